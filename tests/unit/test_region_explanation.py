"""The region explanation names the other side's region, as the reader sees the pair."""

from __future__ import annotations

from types import SimpleNamespace

from matcher.config import REPO_DATA_DIR
from matcher.rank.pair import region_feature
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
