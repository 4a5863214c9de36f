"""Routing rules over plain rows: no database, no model (runs in milliseconds)."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from matcher.config import REPO_DATA_DIR
from matcher.domain import Components, Match
from matcher.route import (
    Reason,
    RoutingRules,
    RoutingState,
    assess,
    in_scope,
    plan,
    required_level,
    written,
)
from matcher.taxonomy import load_taxonomy

TODAY = date(2026, 12, 3)
RULES = RoutingRules(matches_per_need=3, min_score=0.55)


@pytest.fixture(scope="module")
def tax():  # type: ignore[no-untyped-def]
    return load_taxonomy(REPO_DATA_DIR)


def broker(id: int, **kw: object) -> SimpleNamespace:
    row = dict(
        id=id,
        ref=f"B-{id:02d}",
        certificate_no=f"TM-{id:05d}",
        level="advanced",
        valid_until=TODAY + timedelta(days=365),
        suspended=False,
        domains=["01"],
        regions=["CN"],
        capacity=10,
    )
    row.update(kw)
    return SimpleNamespace(**row)


def need(**kw: object) -> SimpleNamespace:
    row = dict(
        id=1,
        domains=["01.07"],
        home_region="CN-ZJ",
        region_scope="international",
        budget_min=None,
        budget_max=None,
        currency="CNY",
    )
    row.update(kw)
    return SimpleNamespace(**row)


def tech(id: int, region: str = "CN-SH", domains: tuple[str, ...] = ("01.07",)) -> SimpleNamespace:
    return SimpleNamespace(id=id, region=region, domains=list(domains))


def match(tech_id: int, score: float) -> Match:
    return Match(
        need_id=1,
        technology_id=tech_id,
        score=score,
        components=Components(score, 0.0, 1.0, 1.0, 1.0),
        explanation="",
    )


def test_workload_counts_each_item_once_within_a_pass(tax) -> None:  # type: ignore[no-untyped-def]
    # one broker for three matches: the reasons read 0, 1, 2 (the report saw 0, 2, 4)
    techs = {i: tech(i) for i in (1, 2, 3)}
    result = plan(
        need(),
        [match(1, 0.9), match(2, 0.8), match(3, 0.7)],
        techs,
        [broker(1)],
        {1: 0},
        today=TODAY,
        tax=tax,
        rules=RULES,
    )
    loads = [r.params["load"] for a in result.assignments for r in a.reasons if r.key == "workload"]
    assert loads == [0, 1, 2]
    assert result.state is RoutingState.routed


def test_capacity_reached_within_a_pass_goes_to_the_next_broker(tax) -> None:  # type: ignore[no-untyped-def]
    techs = {i: tech(i) for i in (1, 2)}
    full_soon = broker(1, capacity=1, regions=["CN-ZJ"])  # the better fit, room for one
    other = broker(2)
    result = plan(
        need(), [match(1, 0.9), match(2, 0.8)], techs, [full_soon, other], {},
        today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert [a.broker.id for a in result.assignments] == [1, 2]


def test_nobody_can_take_it_is_unrouted_with_the_causes(tax) -> None:  # type: ignore[no-untyped-def]
    techs = {1: tech(1)}
    brokers = [
        broker(1, capacity=2),
        broker(2, suspended=True),
        broker(3, valid_until=TODAY - timedelta(days=1)),
        broker(4, domains=["05"]),
    ]
    result = plan(
        need(), [match(1, 0.9)], techs, brokers, {1: 2}, today=TODAY, tax=tax, rules=RULES
    )
    assert result.state is RoutingState.unrouted and not result.assignments
    text = written(result.reason, tax)
    assert "1 at full capacity" in text["en"] and "2 suspended or expired" in text["en"]
    assert "1 do not cover its field" in text["en"]
    assert "满负荷" in text["zh"] and "技术经理人" in text["zh"]


def test_weak_matches_are_never_routed(tax) -> None:  # type: ignore[no-untyped-def]
    techs = {1: tech(1), 2: tech(2)}
    result = plan(
        need(), [match(1, 0.49), match(2, 0.3)], techs, [broker(1)], {},
        today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert result.state is RoutingState.unrouted and not result.assignments
    assert "scored at least 0.55" in written(result.reason, tax)["en"]
    mixed = plan(
        need(), [match(1, 0.9), match(2, 0.3)], techs, [broker(1)], {},
        today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert [a.match.technology_id for a in mixed.assignments] == [1]


def test_national_scope_takes_only_domestic_technologies(tax) -> None:  # type: ignore[no-untyped-def]
    domestic = need(region_scope="national")
    assert in_scope(domestic, tech(1, "CN-GD"), tax)
    assert not in_scope(domestic, tech(2, "NL"), tax)
    assert in_scope(need(region_scope="international"), tech(2, "NL"), tax)
    techs = {1: tech(1, "NL"), 2: tech(2, "DE"), 3: tech(3, "CN-GD")}
    result = plan(
        domestic, [match(1, 0.9), match(2, 0.8), match(3, 0.7)], techs,
        [broker(1, regions=["CN", "EU"])], {}, today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert [a.match.technology_id for a in result.assignments] == [3]
    only_foreign = plan(
        domestic, [match(1, 0.9)], {1: techs[1]}, [broker(1)], {},
        today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert only_foreign.state is RoutingState.unrouted
    assert "national" in written(only_foreign.reason, tax)["en"]
    assert "国内" in written(only_foreign.reason, tax)["zh"]


def test_pairs_already_in_an_inbox_are_not_routed_twice(tax) -> None:  # type: ignore[no-untyped-def]
    techs = {1: tech(1), 2: tech(2)}
    result = plan(
        need(), [match(1, 0.9), match(2, 0.8)], techs, [broker(1)], {},
        active=frozenset({1}), today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert [a.match.technology_id for a in result.assignments] == [2]
    again = plan(
        need(), [match(1, 0.9), match(2, 0.8)], techs, [broker(1)], {},
        active=frozenset({1, 2}), today=TODAY, tax=tax, rules=RULES,
    )  # fmt: skip
    assert again.state is RoutingState.routed and not again.assignments


def test_level_rules_and_reasons_in_both_languages(tax) -> None:  # type: ignore[no-untyped-def]
    big = need(budget_max=2_000_000, currency="USD")
    level, why = required_level(big, tech(1, "NL"), tax, RULES)
    assert level == "advanced" and [r.key for r in why] == ["cross_border", "large_budget"]
    verdict = assess(
        broker(1, level="intermediate"), big, tech(1, "NL"),
        today=TODAY, tax=tax, rules=RULES, load=0,
    )  # fmt: skip
    assert verdict.refused == "level"
    verdict = assess(broker(1), big, tech(1, "NL"), today=TODAY, tax=tax, rules=RULES, load=3)
    text = written(list(verdict.reasons), tax)
    assert "cross-border match needs intermediate level or above" in text["en"]
    assert "budget above 5,000,000 CNY needs advanced level" in text["en"]
    assert "workload 3/10" in text["en"]
    assert "高级" in text["zh"] and "工作量 3/10" in text["zh"] and "workload" not in text["zh"]


def test_reason_names_codes_in_the_readers_language(tax) -> None:  # type: ignore[no-untyped-def]
    reason = Reason("region", {"region": "CN-ZJ"})
    assert reason.text("en", tax) != reason.text("zh", tax)
    assert "CN-ZJ" not in reason.text("zh", tax)


def test_routing_settings_read_the_new_and_the_old_names(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from matcher.config import Settings

    monkeypatch.setenv("MATCHER_API_ROUTE_MATCHES_PER_NEED", "5")
    monkeypatch.setenv("MATCHER_API_CROSS_BORDER_MIN_LEVEL", "advanced")
    monkeypatch.setenv("MATCHER_ROUTE_MIN_SCORE", "0.6")
    rules = RoutingRules.from_settings(Settings().route)
    assert rules == RoutingRules(
        cross_border_min_level="advanced",
        large_budget_cny=5_000_000.0,
        large_budget_min_level="advanced",
        matches_per_need=5,
        min_score=0.6,
    )
    monkeypatch.setenv("MATCHER_ROUTE_MATCHES_PER_NEED", "2")  # the new name wins
    assert Settings().route.matches_per_need == 2
    monkeypatch.setenv("MATCHER_ROUTE_CROSS_BORDER_MIN_LEVEL", "expert")
    with pytest.raises(ValueError, match="MATCHER_ROUTE_CROSS_BORDER_MIN_LEVEL"):
        Settings()
