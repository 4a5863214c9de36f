"""The region explanation names the other side's region, as the reader sees the pair."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from matcher.config import REPO_DATA_DIR, RankWeights
from matcher.rank.pair import region_feature
from matcher.rank.score import scoped
from matcher.taxonomy import load_taxonomy


def test_technology_holders_read_the_needs_region() -> None:
    tax = load_taxonomy(REPO_DATA_DIR)
    dutch_need = SimpleNamespace(home_region="NL", region_scope="international", region_hard=False)
    zhejiang_tech = SimpleNamespace(region="CN-ZJ")
    for_need = region_feature(dutch_need, zhejiang_tech, tax)
    for_tech = region_feature(dutch_need, zhejiang_tech, tax, reader="technology")
    assert for_need.value == for_tech.value
    assert tax.region_name("CN-ZJ") in for_need.phrase
    assert (
        tax.region_name("NL") in for_tech.phrase and tax.region_name("CN-ZJ") not in for_tech.phrase
    )
    zh = region_feature(dutch_need, zhejiang_tech, tax, lang="zh", reader="technology").phrase
    assert tax.region_name("NL", "zh") in zh


def test_the_needs_scope_orders_results_unless_the_fit_is_clearly_better() -> None:
    tax = load_taxonomy(REPO_DATA_DIR)
    jiangsu = SimpleNamespace(home_region="CN-JS", region_scope="national", region_hard=False)
    local = SimpleNamespace(home_region="CN-JS", region_scope="local", region_hard=False)
    anywhere = SimpleNamespace(home_region="CN-JS", region_scope="international", region_hard=False)
    german, guangdong = SimpleNamespace(region="DE"), SimpleNamespace(region="CN-GD")
    assert region_feature(jiangsu, guangdong, tax).in_scope
    outside = region_feature(jiangsu, german, tax)
    assert not outside.in_scope and "outside the need's national scope" in outside.phrase
    assert "超出需求的全国范围" in region_feature(jiangsu, german, tax, lang="zh").phrase
    assert not region_feature(local, guangdong, tax).in_scope  # a local need: its province
    assert region_feature(anywhere, german, tax).in_scope
    weights = RankWeights()  # scope_margin 0.15
    # a foreign technology a little better than a domestic one ranks below it ...
    close = scoped(np.array([0.62, 0.60]), [False, True], weights)
    assert close.argmax() == 1 and close[1] == 0.60
    # ... and one clearly better still ranks first
    clear = scoped(np.array([0.80, 0.60]), [False, True], weights)
    assert clear.argmax() == 0
    off = scoped(np.array([0.62, 0.60]), [False, True], RankWeights(scope_margin=0))
    assert off.argmax() == 0
