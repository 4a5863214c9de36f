"""Limits and input hygiene on the record models and the JSON walk (no model, no database)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from api.schemas import NeedUpdate, SearchRequest, TechnologyUpdate
from matcher import limits
from matcher.domain import BrokerIn, NeedIn, TechnologyIn

TECHNOLOGY: dict[str, Any] = {
    "id": "T-1",
    "title": "Solid-state battery electrolyte",
    "description": "A sulfide electrolyte for solid-state lithium batteries at room temperature.",
    "owner": "Institute of Physics",
    "domains": ["04"],
    "trl": 5,
    "region": "CN-BJ",
    "keywords": ["battery", "electrolyte"],
    "patents": ["CN114123456B"],
    "cpc": ["H01M 10/0525"],
}
NEED: dict[str, Any] = {
    "id": "N-1",
    "enterprise": "Battery Works Ltd",
    "title": "Safer battery cells",
    "description": "We need a non-flammable electrolyte for our lithium-ion battery cells.",
    "domains": ["04"],
    "trl_min": 4,
    "region_scope": "national",
    "home_region": "CN-JS",
    "budget_max": 2_000_000,
    "currency": "CNY",
    "contact": "ops@example.com",
}
BROKER: dict[str, Any] = {
    "id": "B-1",
    "name": "Li Wei",
    "certificate_no": "TTB-2026-0001",
    "level": "advanced",
    "valid_until": "2028-12-31",
    "domains": ["04"],
    "regions": ["CN-JS"],
    "email": "li@example.com",
}
RECORDS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (TechnologyIn, TECHNOLOGY),
    (NeedIn, NEED),
    (BrokerIn, BROKER),
]


def problems(model: type[BaseModel], **changes: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """(type, loc) of each error of ``model`` validated with ``changes``."""
    base = next(record for m, record in RECORDS if m is model) if model in dict(RECORDS) else {}
    try:
        model.model_validate({**base, **changes})
    except ValidationError as exc:
        return [(e["type"], e["loc"]) for e in exc.errors()]
    return []


@pytest.mark.parametrize(("model", "record"), RECORDS)
def test_valid_records_pass(model: type[BaseModel], record: dict[str, Any]) -> None:
    assert problems(model) == []


def _string_fields(model: type[BaseModel]) -> list[str]:
    return [
        name
        for name, info in model.model_fields.items()
        if "str" in str(info.annotation) and name != "language"
    ]


@pytest.mark.parametrize(("model", "record"), RECORDS)
@pytest.mark.parametrize(
    ("bad", "kind"), [("\x00", "control_character"), ("\ud800", "surrogate_character")]
)
def test_every_string_field_refuses_nul_and_lone_surrogates(
    model: type[BaseModel], record: dict[str, Any], bad: str, kind: str
) -> None:
    for name in _string_fields(model):
        value = record.get(name, "")
        if isinstance(value, list):
            changed: Any = [*value, f"x{bad}y"]
            where: tuple[Any, ...] = (name, len(value))
        else:
            changed, where = f"{value or 'abc'}{bad}", (name,)
        assert (kind, where) in problems(model, **{name: changed}), name


def test_control_characters_only_and_tab_newline_allowed() -> None:
    assert problems(TechnologyIn, title="\x01\x02\x03\x04\x05") == [
        ("control_character", ("title",))
    ]
    assert problems(TechnologyIn, description=TECHNOLOGY["description"] + "\n\tmore\r\n") == []
    error = limits.bad_character("ok\x1fno")
    assert error is not None and error.ctx == {"char": "U+001F"} and "remove it" in error.msg


def test_lists_have_a_count_and_each_item_a_length() -> None:
    assert problems(TechnologyIn, keywords=["k" * 1_000_000]) == [
        ("string_too_long", ("keywords", 0))
    ]
    assert problems(TechnologyIn, keywords=[f"k{i}" for i in range(limits.MAX_KEYWORDS + 1)]) == [
        ("too_long", ("keywords",))
    ]
    assert problems(NeedIn, domains=["04"] * 50_000) == [("too_long", ("domains",))]
    assert problems(TechnologyIn, patents=["P" * 65]) == [("string_too_long", ("patents", 0))]
    assert problems(TechnologyIn, cpc=["H" * 33]) == [("string_too_long", ("cpc", 0))]
    assert problems(TechnologyIn, region="CN-" + "X" * 20) == [("string_too_long", ("region",))]
    assert problems(BrokerIn, regions=["CN"] * (limits.MAX_REGIONS + 1)) == [
        ("too_long", ("regions",))
    ]


def test_repeated_codes_are_stored_once() -> None:
    need = NeedIn.model_validate({**NEED, "domains": ["04", "04 ", "0401", "04"]})
    assert need.domains == ["04", "0401"]
    tech = TechnologyIn.model_validate({**TECHNOLOGY, "keywords": "a;b;a"})
    assert tech.keywords == ["a", "b"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "1e400", "NaN"])
def test_budgets_are_finite(value: Any) -> None:
    assert problems(NeedIn, budget_max=value) == [("finite_number", ("budget_max",))]


def test_budgets_are_bounded() -> None:
    assert problems(NeedIn, budget_max=limits.MAX_BUDGET) == []
    assert problems(NeedIn, budget_max=limits.MAX_BUDGET * 10) == [
        ("less_than_equal", ("budget_max",))
    ]


def test_currency_is_iso_4217() -> None:
    assert problems(NeedIn, currency="XYZ") == [("unknown_currency", ("currency",))]
    assert problems(NeedIn, currency="XTS") == [("unknown_currency", ("currency",))]
    assert problems(NeedIn, currency="EURO") == [("string_pattern_mismatch", ("currency",))]
    assert NeedIn.model_validate({**NEED, "currency": " eur "}).currency == "EUR"
    assert {"CNY", "EUR", "USD", "GBP", "JPY", "HKD"} <= limits.CURRENCIES
    try:
        NeedIn.model_validate({**NEED, "currency": "XYZ"})
    except ValidationError as exc:
        assert exc.errors()[0]["ctx"] == {"code": "XYZ"}
        assert "ISO 4217" in exc.errors()[0]["msg"]


def test_deadlines_not_in_the_past() -> None:
    today = datetime.now(UTC).date()
    assert problems(NeedIn, deadline="2020-01-01") == [("deadline_past", ("deadline",))]
    assert problems(NeedIn, deadline=(today - timedelta(days=2)).isoformat()) == [
        ("deadline_past", ("deadline",))
    ]
    # today anywhere on Earth is fine: yesterday in UTC is still today west of it
    assert problems(NeedIn, deadline=(today - timedelta(days=1)).isoformat()) == []
    assert problems(NeedIn, deadline=today.isoformat()) == []
    # a file import may carry needs whose deadline has passed
    old = NeedIn.model_validate(
        {**NEED, "deadline": "2020-01-01"}, context={limits.PAST_DEADLINES_OK: True}
    )
    assert old.deadline == date(2020, 1, 1)
    assert limits.earliest_deadline(datetime(2027, 1, 1, 3, tzinfo=UTC)) == date(2026, 12, 31)


def test_api_models_share_the_limits() -> None:
    for model, changes, expected in [
        (NeedUpdate, {"budget_min": float("inf")}, ("finite_number", ("budget_min",))),
        (NeedUpdate, {"currency": "XYZ"}, ("unknown_currency", ("currency",))),
        (NeedUpdate, {"deadline": "2020-06-30"}, ("deadline_past", ("deadline",))),
        (NeedUpdate, {"domains": ["04"] * 50_000}, ("too_long", ("domains",))),
        (NeedUpdate, {"contact": "a\x00b"}, ("control_character", ("contact",))),
        (TechnologyUpdate, {"keywords": ["k" * 1_000_000]}, ("string_too_long", ("keywords", 0))),
        (TechnologyUpdate, {"cpc": ["H01M"] * 51}, ("too_long", ("cpc",))),
        (SearchRequest, {"text": "battery\ud800"}, ("surrogate_character", ("text",))),
        (SearchRequest, {"text": "x", "region": "\x00"}, ("control_character", ("region",))),
    ]:
        try:
            model.model_validate(changes)
        except ValidationError as exc:
            assert [(e["type"], e["loc"]) for e in exc.errors()] == [expected], model
        else:
            raise AssertionError(f"{model.__name__} accepted {changes}")


def test_json_problems_find_what_cannot_be_stored() -> None:
    body = json.loads(
        '{"a": [1, NaN, {"b": "x\\u0000"}], "c": 1e400, "d": 9223372036854775808,'
        ' "e": "\\ud800", "f\\u0001": 1, "ok": ["fine\\n", 2, true, null, 1.5]}'
    )
    found = [(e.type, e.loc) for e in limits.json_problems(body, ("body",))]
    assert found == [
        ("finite_number", ("body", "a", 1)),
        ("control_character", ("body", "a", 2, "b")),
        ("finite_number", ("body", "c")),
        ("integer_too_large", ("body", "d")),
        ("surrogate_character", ("body", "e")),
        ("control_character", ("body",)),
    ]
    assert list(limits.json_problems({"fine": [limits.MAX_ID, -limits.MAX_ID, "😀"]})) == []


def test_the_forms_word_the_new_limits_in_both_languages() -> None:
    from api.web.i18n import field_error_text
    from matcher.errors import FieldError

    for type_, ctx in [
        ("deadline_past", {}),
        ("unknown_currency", {"code": "XYZ"}),
        ("control_character", {}),
        ("surrogate_character", {}),
        ("too_long", {"max_length": 20, "actual_length": 50}),
    ]:
        error = FieldError(type_, ("x",), "English text never shown as is", ctx)
        zh, en = field_error_text("zh", error), field_error_text("en", error)
        assert "English text" not in zh and "English text" not in en, type_
        assert zh != en
