"""Deal rules over plain rows: stages, claiming, feedback (no database, no model)."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from matcher.deal import (
    DECLINE_REASONS,
    IllegalTransitionError,
    allowed,
    check_claim,
    check_feedback,
    check_stage,
    frees_capacity,
)
from matcher.errors import ConflictError, InvalidInputError, PermissionDeniedError

TODAY = date(2026, 12, 3)


def item(state: str) -> SimpleNamespace:
    return SimpleNamespace(id=7, state=state)


def broker(valid_days: int = 30) -> SimpleNamespace:
    return SimpleNamespace(id=1, valid_until=TODAY + timedelta(days=valid_days))


def test_stages_move_one_step_or_close_as_lost_with_a_reason() -> None:
    assert allowed("claimed") == ["contacted", "closed_lost"]
    assert allowed("agreed") == [] and allowed("closed_lost") == []
    check_stage("negotiating", "agreed", None)
    with pytest.raises(IllegalTransitionError, match="allowed next: contacted, closed_lost"):
        check_stage("claimed", "agreed", None)
    with pytest.raises(IllegalTransitionError, match="needs a reason"):
        check_stage("claimed", "closed_lost", "  ")
    with pytest.raises(IllegalTransitionError, match="none \\(the deal is closed\\)"):
        check_stage("agreed", "contacted", None)
    with pytest.raises(IllegalTransitionError, match="unknown stage"):
        check_stage("claimed", "won", None)
    assert isinstance(IllegalTransitionError("x"), ConflictError)


def test_ending_a_deal_frees_capacity() -> None:
    assert frees_capacity("negotiating", "agreed")
    assert frees_capacity("claimed", "closed_lost")
    assert not frees_capacity("claimed", "contacted")


def test_claiming_needs_a_waiting_item_and_a_valid_certificate() -> None:
    check_claim(item("new"), broker(), today=TODAY, existing_deal=None)
    check_claim(item("seen"), broker(0), today=TODAY, existing_deal=None)
    with pytest.raises(ConflictError, match="already claimed as deal 3"):
        check_claim(item("claimed"), broker(), today=TODAY, existing_deal=3)
    with pytest.raises(ConflictError, match="declined"):
        check_claim(item("declined"), broker(), today=TODAY, existing_deal=None)
    with pytest.raises(ConflictError, match="taken back"):
        check_claim(item("returned"), broker(), today=TODAY, existing_deal=None)
    with pytest.raises(PermissionDeniedError, match="expired on"):
        check_claim(item("new"), broker(-1), today=TODAY, existing_deal=None)


def test_feedback_fits_the_decision_and_the_state() -> None:
    check_feedback(item("seen"), "accept", None)
    check_feedback(item("new"), "decline", DECLINE_REASONS[0])
    with pytest.raises(InvalidInputError, match="needs a reason code"):
        check_feedback(item("new"), "decline", None)
    with pytest.raises(InvalidInputError, match="leave it out when accepting"):
        check_feedback(item("new"), "accept", "duplicate")
    with pytest.raises(ConflictError, match="already declined"):
        check_feedback(item("declined"), "accept", None)
    with pytest.raises(ConflictError, match="close the deal as closed_lost"):
        check_feedback(item("claimed"), "decline", "other")
