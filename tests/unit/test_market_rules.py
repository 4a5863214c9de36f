"""The exchange market's rules over plain rows: what a teaser hides, what a contract must hold,
how the statistics group contracts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from matcher import market
from matcher.domain import TechnologyIn
from matcher.errors import ConflictError, RecordInvalidError
from matcher.store.repo.market import ContractFact
from matcher.taxonomy import load_taxonomy

TAX = load_taxonomy()


def technology(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": 7,
        "ref": "ZJU-2026-017",
        "title": "Self-healing epoxy coating",
        "description": "A coating from the Zhejiang lab of Prof. Li that heals scratches.",
        "owner": "Zhejiang University",
        "contact": "Li Wei <li@zju.example>",
        "domains": ["04.06"],
        "trl": 6,
        "region": "CN-ZJ",
        "ip_status": "granted",
        "licensing": "exclusive_licence",
        "licensing_terms": "Exclusive in China, 5 years, royalty 3%; ask Prof. Li",
        "asking_min": 500_000.0,
        "asking_max": 1_500_000.0,
        "asking_currency": "CNY",
        "confidential": False,
    }
    return SimpleNamespace(**{**values, **overrides})


# -- the listing ---------------------------------------------------------------------------
def test_a_public_entry_shows_the_offer_but_never_the_contact() -> None:
    entry = market.entry_of(technology(), TAX)
    assert (entry.ref, entry.title, entry.owner) == (
        "ZJU-2026-017",
        "Self-healing epoxy coating",
        "Zhejiang University",
    )
    assert (entry.asking_min, entry.asking_max, entry.asking_currency) == (5e5, 1.5e6, "CNY")
    assert entry.region == "CN-ZJ" and entry.licensing_terms
    assert not hasattr(entry, "contact")


def test_a_teaser_shows_field_trl_country_and_licensing_only() -> None:
    entry = market.entry_of(technology(confidential=True), TAX)
    shown = {k: v for k, v in entry.__dict__.items() if v is not None}
    assert shown == {
        "id": 7,
        "confidential": True,
        "domains": ["04.06"],
        "trl": 6,
        "region": "CN",  # the country, not the province
        "licensing": "exclusive_licence",
    }
    text = repr(entry)
    for secret in ("Zhejiang", "ZJU", "Li", "epoxy", "500000", "CN-ZJ"):
        assert secret not in text, secret


def test_the_listing_filter_never_searches_a_teaser_by_subdivision() -> None:
    by_country = market.listing_filter(TAX, region="CN")
    assert by_country.teaser_regions and "CN-ZJ" in by_country.teaser_regions
    by_province = market.listing_filter(TAX, region="CN-JS")
    assert by_province.teaser_regions == frozenset()  # a teaser shows no province
    assert by_province.regions and "CN-JS" in by_province.regions
    grouping = next(iter(TAX.groupings))
    assert market.listing_filter(TAX, region=grouping).teaser_regions is not None


def test_unknown_filter_codes_are_field_errors() -> None:
    with pytest.raises(RecordInvalidError) as caught:
        market.listing_filter(TAX, domain="99.99")
    assert [(e.type, e.loc) for e in caught.value.errors] == [("unknown_domain", ("domain",))]
    with pytest.raises(RecordInvalidError) as caught:
        market.listing_filter(TAX, region="XX-QQ")
    assert caught.value.errors[0].type == "unknown_region"


def test_asking_price_window_and_default_currency() -> None:
    base = {
        "id": "T-1",
        "title": "t",
        "description": "a description long enough to pass",
        "owner": "Owner",
        "trl": 5,
        "region": "CN",
    }
    with pytest.raises(ValidationError) as caught:
        TechnologyIn.model_validate({**base, "asking_min": 10, "asking_max": 5})
    assert caught.value.errors()[0]["type"] == "asking_window"
    record = TechnologyIn.model_validate({**base, "asking_max": 5})
    assert record.asking_currency == "CNY"
    assert TechnologyIn.model_validate(base).asking_currency is None


# -- contracts -----------------------------------------------------------------------------
GOOD = {
    "type": "licence",
    "value": 800_000,
    "currency": "cny",
    "signed_on": "2026-03-02",
    "parties": ["Zhejiang University", "Harbour Tugs Co."],
}


def problems(**changes: Any) -> list[tuple[str, tuple[Any, ...]]]:
    try:
        market.check_contract({**GOOD, **changes})
    except RecordInvalidError as exc:
        return [(e.type, e.loc) for e in exc.errors]
    return []


def test_a_valid_contract_passes_and_is_normalised() -> None:
    contract = market.check_contract(GOOD)
    assert (contract.type.value, contract.currency, contract.signed_on) == (
        "licence",
        "CNY",
        date(2026, 3, 2),
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"type": "gift"}, ("enum", ("contract", "type"))),
        ({"value": -1}, ("greater_than_equal", ("contract", "value"))),
        ({"currency": "YUAN"}, ("string_pattern_mismatch", ("contract", "currency"))),
        ({"currency": "ABC"}, ("unknown_currency", ("contract", "currency"))),
        ({"parties": []}, ("too_short", ("contract", "parties"))),
        ({"parties": [f"P{i}" for i in range(11)]}, ("too_long", ("contract", "parties"))),
        (
            {"parties": ["Zhejiang University", "  "]},
            ("string_too_short", ("contract", "parties", 1)),
        ),
        ({"signed_on": "someday"}, ("date_parsing", ("contract", "signed_on"))),
        ({"signed_on": 0}, ("date_parsing", ("contract", "signed_on"))),  # not a timestamp
    ],
)
def test_a_bad_contract_is_refused_field_by_field(changes: dict[str, Any], expected: Any) -> None:
    assert expected in problems(**changes)


def test_a_signing_date_in_the_future_is_refused_but_today_anywhere_is_not() -> None:
    today = datetime.now(UTC).date()
    assert problems(signed_on=(today + timedelta(days=3)).isoformat()) == [
        ("signed_future", ("contract", "signed_on"))
    ]
    assert problems(signed_on=(today + timedelta(days=1)).isoformat()) == []


def test_a_contract_is_recorded_on_an_agreed_deal_only() -> None:
    market.check_recordable("agreed", 1)
    for stage in ("claimed", "negotiating", "closed_lost"):
        with pytest.raises(ConflictError, match="once the deal is agreed"):
            market.check_recordable(stage, 1)


# -- statistics ----------------------------------------------------------------------------
def fact(n: int, **overrides: Any) -> ContractFact:
    values: dict[str, Any] = {
        "deal_id": n,
        "contract_type": "licence",
        "value": 100.0,
        "currency": "CNY",
        "signed_on": date(2026, 1, 15),
        "domains": ("04.06",),
        "region": "CN-ZJ",
    }
    return ContractFact(**{**values, **overrides})


FACTS = [
    fact(1),
    fact(2, value=50.0, signed_on=date(2026, 2, 1)),
    fact(3, currency="EUR", value=20.0, signed_on=date(2026, 4, 1), region="DE"),
    fact(4, domains=("01.01", "04.06"), contract_type="transfer", signed_on=date(2025, 12, 31)),
    fact(5, domains=(), value=7.0),
]


def summary(by: str, period: str = "month") -> dict[str, tuple[int, dict[str, tuple[int, float]]]]:
    return {
        g.key: (g.transactions, {c: (t.transactions, t.value) for c, t in g.totals.items()})
        for g in market.tabulate(FACTS, by, period, TAX)
    }


def test_statistics_by_field_use_the_first_codes_top_level_field() -> None:
    assert summary("field") == {
        "-": (1, {"CNY": (1, 7.0)}),
        "01": (1, {"CNY": (1, 100.0)}),
        "04": (3, {"CNY": (2, 150.0), "EUR": (1, 20.0)}),
    }


def test_statistics_by_region_and_type() -> None:
    assert summary("region") == {
        "CN-ZJ": (4, {"CNY": (4, 257.0)}),
        "DE": (1, {"EUR": (1, 20.0)}),
    }
    assert summary("type") == {
        "licence": (4, {"CNY": (3, 157.0), "EUR": (1, 20.0)}),
        "transfer": (1, {"CNY": (1, 100.0)}),
    }


@pytest.mark.parametrize(
    ("period", "keys"),
    [
        ("month", ["2025-12", "2026-01", "2026-02", "2026-04"]),
        ("quarter", ["2025-Q4", "2026-Q1", "2026-Q2"]),
        ("year", ["2025", "2026"]),
    ],
)
def test_statistics_by_period_in_time_order(period: str, keys: list[str]) -> None:
    assert list(summary("period", period)) == keys
    total = sum(n for n, _ in summary("period", period).values())
    assert total == len(FACTS)


def test_group_names_for_people() -> None:
    assert market.group_name(TAX, "field", "04", "zh") == TAX.domains["04"].name("zh")
    assert market.group_name(TAX, "region", "DE", "en") == TAX.region_name("DE", "en")
    assert market.group_name(TAX, "period", "2026-Q1") == "2026-Q1"
