"""Broker competency's rules over plain values: training records, certificate events and
state, upgrades, reassignment, and the track record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from matcher.competency import (
    Certificate,
    certificate_changes,
    certificate_state,
    check_training,
    check_upgrade,
)
from matcher.errors import ConflictError, InvalidInputError, RecordInvalidError
from matcher.reassign import Standing, check_reassign
from matcher.track_record import DealFacts, StageMove, stage_days, summarise

TODAY = date(2026, 12, 5)
GOOD = {
    "course": "Technology transfer practice",
    "level": "intermediate",
    "taken_on": "2026-11-20",
    "hours": "32",
    "training_base": "Zhejiang Technology Transfer Training Base",
}


def problems(raw: dict[str, object]) -> dict[str, str]:
    with pytest.raises(RecordInvalidError) as caught:
        check_training(raw, today=TODAY)
    return {e.field: e.type for e in caught.value.errors}


def test_a_training_record_is_checked_field_by_field() -> None:
    training = check_training(GOOD, today=TODAY)
    assert (training.hours, training.taken_on, training.level) == (
        32.0,
        date(2026, 11, 20),
        "intermediate",
    )
    assert check_training({**GOOD, "hours": 0.5, "taken_on": TODAY}, today=TODAY).hours == 0.5
    assert problems({**GOOD, "hours": "0.4"}) == {"hours": "greater_than_equal"}
    assert problems({**GOOD, "hours": 400.5}) == {"hours": "less_than_equal"}
    assert problems({**GOOD, "hours": "nan"}) == {"hours": "float_parsing"}
    assert problems({**GOOD, "taken_on": "2026-12-06"}) == {"taken_on": "date_future"}
    assert problems({**GOOD, "taken_on": "yesterday"}) == {"taken_on": "date_parsing"}
    assert problems({**GOOD, "level": "expert"}) == {"level": "enum"}
    assert problems({**GOOD, "course": "  ", "training_base": "x" * 201}) == {
        "course": "string_too_short",
        "training_base": "string_too_long",
    }
    assert isinstance(RecordInvalidError([]), InvalidInputError)  # answers 422


def cert(
    level: str = "intermediate", days: int = 100, suspended: bool = False, no: str = "N1"
) -> Certificate:
    return Certificate(level, TODAY + timedelta(days=days), suspended, no)


def test_certificate_changes_name_renewals_upgrades_suspensions() -> None:
    assert certificate_changes(cert(), cert(days=400)) == ["renewed"]
    assert certificate_changes(cert(), cert(level="advanced", days=400)) == ["upgraded"]
    assert certificate_changes(cert(), cert(level="beginner")) == ["renewed"]
    assert certificate_changes(cert(), cert(suspended=True)) == ["suspended"]
    assert certificate_changes(cert(suspended=True), cert()) == ["reinstated"]
    assert certificate_changes(cert(), cert()) == []


def test_certificate_state_marks_what_needs_attention() -> None:
    def state(days: int, suspended: bool = False) -> str:
        return certificate_state(
            suspended=suspended, valid_until=TODAY + timedelta(days=days), today=TODAY
        )

    assert [state(31), state(30), state(0), state(-1), state(400, True)] == [
        "valid",
        "expiring",
        "expiring",
        "expired",
        "suspended",
    ]


def test_an_upgrade_goes_up_to_a_valid_certificate() -> None:
    check_upgrade(cert(), level="advanced", valid_until=TODAY, today=TODAY)
    with pytest.raises(InvalidInputError, match="renew instead"):
        check_upgrade(cert(), level="intermediate", valid_until=TODAY, today=TODAY)
    with pytest.raises(InvalidInputError, match="in the past"):
        check_upgrade(cert(), level="advanced", valid_until=TODAY - timedelta(days=1), today=TODAY)
    with pytest.raises(ConflictError, match="suspended"):
        check_upgrade(cert(suspended=True), level="advanced", valid_until=TODAY, today=TODAY)


def test_an_item_is_reassigned_only_while_unclaimed_to_a_broker_who_can_take_it() -> None:
    ok = Standing("B-02", False, TODAY, capacity=5, load=4)
    check_reassign("seen", "B-01", ok, today=TODAY)
    for state in ("claimed", "declined", "returned"):
        with pytest.raises(ConflictError, match="unclaimed"):
            check_reassign(state, "B-01", ok, today=TODAY)
    refused = [
        ("B-02", ok, "already with"),
        ("B-01", Standing("B-02", True, TODAY, 5, 0), "suspended"),
        ("B-01", Standing("B-02", False, TODAY - timedelta(days=1), 5, 0), "expired"),
        ("B-01", Standing("B-02", False, TODAY, 5, 5), "no free capacity"),
    ]
    for holder, to, why in refused:
        with pytest.raises(ConflictError, match=why):
            check_reassign("new", holder, to, today=TODAY)


def test_the_track_record_counts_verdicts_deals_value_and_days_per_stage() -> None:
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    moves = [
        StageMove(1, "claimed", t0),
        StageMove(1, "contacted", t0 + timedelta(days=2)),
        StageMove(1, "nda_signed", t0 + timedelta(days=5)),
        StageMove(2, "claimed", t0),
        StageMove(2, "contacted", t0 + timedelta(days=4)),
        StageMove(3, "claimed", t0),
        StageMove(3, "contacted", t0 + timedelta(days=9)),
    ]
    assert stage_days(moves) == {"claimed": [2.0, 4.0, 9.0], "contacted": [3.0]}
    record = summarise(
        {"new": 2, "seen": 1, "claimed": 3, "declined": 2},
        [
            ("accept", None),
            ("decline", "trl_mismatch"),
            ("decline", "trl_mismatch"),
            ("decline", None),
        ],
        [
            DealFacts("agreed", 100.0, "CNY"),
            DealFacts("agreed", 50.5, "CNY"),
            DealFacts("agreed", 10.0, "EUR"),
            DealFacts("agreed"),
            DealFacts("closed_lost"),
            DealFacts("negotiating"),
        ],
        moves,
    )
    assert (record.routed, record.waiting, record.accepted, record.declined) == (8, 3, 1, 3)
    assert record.declined_by_reason == {"trl_mismatch": 2, "unspecified": 1}
    assert (record.deals_opened, record.deals_open, record.agreed, record.closed_lost) == (
        6,
        1,
        4,
        1,
    )
    assert record.agreed_value == {"CNY": 150.5, "EUR": 10.0}
    assert record.median_days == {
        "claimed": 4.0,
        "contacted": 3.0,
        "nda_signed": None,
        "negotiating": None,
    }
