"""Each ranking feature on hand-made cases."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from matcher.config import RankWeights
from matcher.domain import Components
from matcher.rank.pair import (
    Query,
    combine,
    domain_feature,
    explain,
    has_hard_filters,
    lexical_feature,
    passes_hard_filters,
    readiness_feature,
    region_feature,
    semantic_feature,
)
from matcher.taxonomy import DomainRelation, load_taxonomy

tax = load_taxonomy()


@dataclass
class Tech:
    domains: list[str] = field(default_factory=lambda: ["04.06"])
    trl: int = 6
    region: str = "CN-JS"


def need(**kw: object) -> Query:
    base: dict[str, object] = {
        "domains": ["04.06"],
        "trl_min": 5,
        "home_region": "CN-JS",
        "region_scope": "national",
    }
    base.update(kw)
    return Query(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "relation"),
    [
        ("04.06", "04.06", DomainRelation.same),
        ("04", "04.06", DomainRelation.parent),
        ("04.06", "04", DomainRelation.parent),
        ("04.06", "04.03", DomainRelation.sibling),
        ("04.06", "06.01", DomainRelation.unrelated),
    ],
)
def test_domain_relations(a: str, b: str, relation: DomainRelation) -> None:
    assert tax.domain_relation(a, b) is relation


def test_domain_feature_orders_relations_and_explains() -> None:
    same = domain_feature(need(domains=["04.06"]), Tech(domains=["04.06"]), tax)
    parent = domain_feature(need(domains=["04"]), Tech(domains=["04.06"]), tax)
    sibling = domain_feature(need(domains=["04.03"]), Tech(domains=["04.06"]), tax)
    unrelated = domain_feature(need(domains=["06.01"]), Tech(domains=["04.06"]), tax)
    assert same.value == 1.0 > parent.value > sibling.value > unrelated.value == 0.0
    assert same.phrase == "same field: new materials › functional coatings and thin films"
    assert sibling.phrase.startswith("related field")
    # The best pair wins when several domains are given.
    assert domain_feature(need(domains=["06.01", "04.06"]), Tech(), tax).value == 1.0
    zh = domain_feature(need(), Tech(), tax, lang="zh")
    assert "新材料 › 功能涂层与薄膜材料" in zh.phrase


def test_readiness_feature() -> None:
    assert readiness_feature(need(trl_min=5), Tech(trl=6)).value == 1.0
    assert readiness_feature(need(trl_min=5), Tech(trl=6)).phrase == "TRL 6 meets minimum 5"
    below = readiness_feature(need(trl_min=5), Tech(trl=4))
    far_below = readiness_feature(need(trl_min=5), Tech(trl=2))
    assert 1.0 > below.value > far_below.value >= 0.0
    assert below.phrase == "TRL 4 below minimum 5"
    above = readiness_feature(need(trl_min=3, trl_max=5), Tech(trl=7))
    assert above.value < 1.0 and "above maximum 5" in above.phrase
    # One level too mature hurts less than one level too early.
    assert readiness_feature(need(trl_min=3, trl_max=5), Tech(trl=6)).value > below.value
    assert readiness_feature(need(trl_min=4, trl_max=6), Tech(trl=5)).phrase == "TRL 5 within 4–6"


def test_region_feature_by_relation_and_scope() -> None:
    local = need(region_scope="local", home_region="CN-JS")
    same_province = region_feature(local, Tech(region="CN-JS"), tax)
    same_delta = region_feature(local, Tech(region="CN-SH"), tax)  # Yangtze River Delta
    same_country = region_feature(local, Tech(region="CN-GD"), tax)
    abroad = region_feature(local, Tech(region="US-CA"), tax)
    assert same_province.value == 1.0
    assert 1.0 > same_delta.value > same_country.value > abroad.value
    assert same_province.phrase.startswith("same province/state")
    assert "Yangtze River Delta" in same_delta.phrase
    assert same_country.phrase.startswith("same country") and "km" in same_country.phrase
    # An enterprise open to international partners barely penalises a foreign technology.
    intl = need(region_scope="international", home_region="CN-JS")
    assert region_feature(intl, Tech(region="US-CA"), tax).value > 0.7
    # Distance breaks ties inside a relation class: nearer abroad is better.
    assert (
        region_feature(intl, Tech(region="JP"), tax).value
        > region_feature(intl, Tech(region="BR"), tax).value
    )


def test_hard_filters() -> None:
    strict = need(trl_min=5, trl_max=7, trl_hard=True)
    assert passes_hard_filters(strict, Tech(trl=6), tax)
    assert not passes_hard_filters(strict, Tech(trl=4), tax)
    assert not passes_hard_filters(strict, Tech(trl=8), tax)
    soft = need(trl_min=5)
    assert passes_hard_filters(soft, Tech(trl=1), tax)
    local = need(region_scope="local", home_region="CN-JS", region_hard=True)
    assert passes_hard_filters(local, Tech(region="CN-SH"), tax)
    assert not passes_hard_filters(local, Tech(region="CN-GD"), tax)
    national = need(region_scope="national", home_region="DE-BY", region_hard=True)
    assert passes_hard_filters(national, Tech(region="DE-NW"), tax)
    assert not passes_hard_filters(national, Tech(region="NL-ZH"), tax)
    # Ranking skips the per-candidate check only for a need that can turn nothing away.
    assert [has_hard_filters(n) for n in (strict, soft, local, national)] == [
        True,
        False,
        True,
        True,
    ]
    assert not has_hard_filters(need(region_hard=True, home_region=None))  # no home: no filter


def test_semantic_and_lexical_features() -> None:
    assert semantic_feature(-0.2) == 0.0
    assert semantic_feature(0.7) == pytest.approx(0.7)
    assert lexical_feature(0.0, 10.0) == 0.0
    assert lexical_feature(10.0, 10.0) == 1.0
    assert 0.0 < lexical_feature(2.5, 10.0) == pytest.approx(0.5)


def test_combine_is_a_weighted_mean_in_unit_interval() -> None:
    weights = RankWeights(semantic=1, lexical=0, domain=1, readiness=0, region=0)
    c = Components(semantic=0.5, lexical=1.0, domain=1.0, readiness=0.0, region=0.0)
    assert combine(c, weights) == pytest.approx(0.75)
    ones = Components(1, 1, 1, 1, 1)
    assert combine(ones, RankWeights()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must not all be zero"):
        combine(c, RankWeights(semantic=0, lexical=0, domain=0, readiness=0, region=0))


def test_every_phrase_reads_in_chinese_with_the_same_value() -> None:
    from matcher.phrases import PHRASES, language_of

    assert PHRASES["en"].keys() == PHRASES["zh"].keys()
    local = need(region_scope="local", home_region="CN-JS", trl_min=5)
    for tech in (Tech(region="CN-SH", trl=4), Tech(region="DE-BY", trl=6, domains=["06.01"])):
        for feature in (
            lambda lang, t=tech: domain_feature(local, t, tax, lang),
            lambda lang, t=tech: readiness_feature(local, t, lang),
            lambda lang, t=tech: region_feature(local, t, tax, lang=lang),
        ):
            en, zh = feature("en"), feature("zh")
            assert en.value == zh.value
            assert en.phrase != zh.phrase
            assert sum("\u4e00" <= ch <= "\u9fff" for ch in zh.phrase) >= 2, zh.phrase
    assert readiness_feature(local, Tech(trl=4), "zh").phrase == "TRL 4，低于最低要求 5"
    delta = region_feature(local, Tech(region="CN-SH"), tax, lang="zh").phrase
    assert delta.startswith("同一区域（") and "上海" in delta and "公里" in delta
    assert explain(["同一领域：新材料", "TRL 6"], "zh") == "同一领域：新材料；TRL 6"
    assert language_of("zh-CN") == "zh" and language_of("fr") == "en" and language_of(None) == "en"
