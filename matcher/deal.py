"""The deal pipeline: claiming an inbox item, stages and their legal moves, notes, feedback.

``allowed``, ``check_stage``, ``check_claim`` and ``check_feedback`` are plain rules over plain
rows; ``claim``, ``change_stage``, ``add_note`` and ``feedback`` apply them to the store.

Concurrent requests on one inbox item or deal are serialised by the database: each move is a
conditional UPDATE from the state the rules were checked against. When another request moved
the row first, the UPDATE matches nothing, the row is reloaded and the rules are checked again
against its new state, exactly as if the requests had come one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matcher import notify
from matcher.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from matcher.store.models import (
    DealEventRow,
    DealRow,
    FeedbackRow,
    NeedRow,
    RoutedMatchRow,
    TechnologyRow,
)
from matcher.store.repo import deals as repo
from matcher.store.repo.routing import OPEN_STAGES

STAGES = ("claimed", "contacted", "nda_signed", "negotiating", "agreed", "closed_lost")
OPEN = OPEN_STAGES  # the stages in which a deal is still worked (and counts as load)
NEXT = {
    "claimed": "contacted",
    "contacted": "nda_signed",
    "nda_signed": "negotiating",
    "negotiating": "agreed",
}
DECLINE_REASONS = (
    "not_relevant",
    "trl_mismatch",
    "region_mismatch",
    "budget_mismatch",
    "domain_mismatch",
    "duplicate",
    "no_capacity",
    "conflict_of_interest",
    "other",
)
# How often a move is checked again after another request moved the row first. Items and
# deals only move forward, so a few rounds always settle; more means something is wrong.
ATTEMPTS = 8


class IllegalTransitionError(ConflictError):
    """A stage change the pipeline does not allow."""


# -- rules ---------------------------------------------------------------------------------
def allowed(current: str) -> list[str]:
    """Stages reachable from the current one."""
    if current not in OPEN:
        return []
    return [NEXT[current], "closed_lost"]


def check_stage(current: str, to: str, reason: str | None) -> None:
    """Refuse a stage change the pipeline does not allow (closing as lost needs a reason)."""
    if to not in STAGES:
        raise IllegalTransitionError(f"unknown stage {to!r}; stages are {', '.join(STAGES)}")
    if to not in allowed(current):
        options = ", ".join(allowed(current)) or "none (the deal is closed)"
        raise IllegalTransitionError(
            f"cannot move a deal from {current} to {to}; allowed next: {options}"
        )
    if to == "closed_lost" and not (reason and reason.strip()):
        raise IllegalTransitionError("closing a deal as lost needs a reason")


def check_claim(item: Any, broker: Any, *, today: date, existing_deal: int | None) -> None:
    """Refuse claiming an inbox item that is not claimable by this broker today."""
    if broker.valid_until < today:
        raise PermissionDeniedError(
            f"your certificate expired on {broker.valid_until.isoformat()}; "
            "ask an administrator to renew it before claiming new deals"
        )
    if item.state == "claimed":
        raise ConflictError(f"inbox item {item.id} is already claimed as deal {existing_deal}")
    if item.state == "declined":
        raise ConflictError(f"inbox item {item.id} was declined and can no longer be claimed")
    if item.state == "returned":
        raise ConflictError(f"inbox item {item.id} was taken back and is being routed again")


def check_feedback(item: Any, decision: str, reason_code: str | None) -> None:
    """Refuse feedback that does not fit the decision or the item's state."""
    if decision not in ("accept", "decline"):
        raise InvalidInputError(f"decision: must be accept or decline, not {decision!r}")
    if decision == "decline" and reason_code is None:
        raise InvalidInputError(
            f"reason_code: a decline needs a reason code, one of: {', '.join(DECLINE_REASONS)}"
        )
    if decision == "accept" and reason_code is not None:
        raise InvalidInputError(
            "reason_code: reason codes explain declines; leave it out when accepting"
        )
    if item.state == "declined":
        raise ConflictError(f"inbox item {item.id} is already declined")
    if item.state == "returned":
        raise ConflictError(f"inbox item {item.id} was taken back and is being routed again")
    if decision == "decline" and item.state == "claimed":
        raise ConflictError(
            f"inbox item {item.id} is claimed as a deal; close the deal as closed_lost instead"
        )


def frees_capacity(before: str, after: str) -> bool:
    """Whether a deal's move ends it, so its broker can take another match."""
    return before in OPEN and after not in OPEN


# -- applied to the store ------------------------------------------------------------------
def own_item(session: Session, broker_id: int, routed_id: int) -> tuple[RoutedMatchRow, Any]:
    """A broker's own inbox item and the broker; anyone else's is reported as absent."""
    item = repo.routed(session, routed_id)
    broker = repo.broker(session, broker_id)
    if item is None or broker is None or item.broker_id != broker_id:
        raise NotFoundError(f"no inbox item {routed_id} in your inbox")
    return item, broker


def claim(
    session: Session, item: RoutedMatchRow, broker: Any, *, actor: str, today: date
) -> DealRow:
    """Take an inbox item on as a deal (stage ``claimed``), audited.

    Of concurrent claims of one item, one moves it to ``claimed``; the others then find it
    claimed (ConflictError).
    """
    for _ in range(ATTEMPTS):
        _check_owner(item, broker)
        check_claim(item, broker, today=today, existing_deal=repo.deal_of_routed(session, item.id))
        if repo.move_item(session, item, broker_id=broker.id, expected=item.state, to="claimed"):
            break
    else:
        raise _kept_moving(f"inbox item {item.id}")
    try:
        deal = repo.add_deal(session, item, broker_id=broker.id)
    except IntegrityError as exc:  # deals.routed_id is unique: a deal made some other way
        raise ConflictError(f"inbox item {item.id} is already claimed") from exc
    repo.add_event(
        session,
        deal_id=deal.id,
        actor=actor,
        kind="stage",
        to_stage="claimed",
        note=f"claimed inbox item {item.id}",
    )
    _tell(session, deal, "claimed")
    return deal


def _tell(session: Session, deal: DealRow, stage: str) -> None:
    """The need's and the technology's submitters hear of the deal's new stage (``notify``)."""
    broker = repo.broker(session, deal.broker_id)
    need = session.get(NeedRow, deal.need_id)
    technology = session.get(TechnologyRow, deal.technology_id)
    if broker is not None:
        notify.deal_moved(session, deal, stage, broker, [need, technology])


def _check_owner(item: RoutedMatchRow, broker: Any) -> None:
    """Refuse an item that left the broker's inbox meanwhile (taken back and routed again)."""
    if item.broker_id != broker.id:
        raise NotFoundError(f"no inbox item {item.id} in your inbox")


def _kept_moving(what: str) -> ConflictError:
    return ConflictError(f"{what} kept changing while this request was handled; try again")


def change_stage(
    session: Session,
    deal: DealRow,
    *,
    to: str,
    actor: str,
    note: str | None = None,
    reason: str | None = None,
) -> DealEventRow:
    """Move a deal one step forward, or close it as lost (reason required); audited.

    Of concurrent changes to one deal, each is judged against the stage the one before left
    (two identical moves: the second is an IllegalTransitionError), so each move is audited
    once. The event's ``from_stage`` is the stage this change moved the deal from.
    """
    lost_reason = reason.strip() if to == "closed_lost" and reason else None
    for _ in range(ATTEMPTS):
        before = deal.stage
        check_stage(before, to, reason)
        if repo.move_deal(session, deal, expected=before, to=to, lost_reason=lost_reason):
            break
    else:
        raise _kept_moving(f"deal {deal.id}")
    _tell(session, deal, to)
    return repo.add_event(
        session,
        deal_id=deal.id,
        actor=actor,
        kind="stage",
        from_stage=before,
        to_stage=to,
        note=note,
    )


def add_note(session: Session, deal: DealRow, *, actor: str, note: str) -> DealEventRow:
    """Attach a note to a deal's audit trail."""
    if not note.strip():
        raise InvalidInputError("note: the note is empty")
    return repo.add_event(session, deal_id=deal.id, actor=actor, kind="note", note=note.strip())


@dataclass
class FeedbackResult:
    """Stored feedback and whether this call stored it (a repeated verdict is not stored twice)."""

    row: FeedbackRow
    created: bool


def feedback(
    session: Session,
    item: RoutedMatchRow,
    broker: Any,
    *,
    decision: str,
    reason_code: str | None = None,
    comment: str | None = None,
) -> FeedbackResult:
    """Accept or decline an inbox item; a decline frees the broker's capacity.

    Accepting twice stores one verdict: feedback trains the learned ranker, so a repeated
    click must not count twice. Concurrent verdicts on one item are serialised by moving the
    item first (an accept moves it to ``seen``, or keeps its state, under the same lock), and
    the store keeps one row per item, broker and decision.
    """
    for _ in range(ATTEMPTS):
        _check_owner(item, broker)
        check_feedback(item, decision, reason_code)
        to = "declined" if decision == "decline" else "seen" if item.state == "new" else item.state
        if repo.move_item(session, item, broker_id=broker.id, expected=item.state, to=to):
            break
    else:
        raise _kept_moving(f"inbox item {item.id}")
    if decision == "accept":
        # read under the item's lock: an accept stored by a concurrent request is seen here
        earlier = repo.feedback_given(
            session, routed_id=item.id, broker_id=broker.id, decision=decision
        )
        if earlier is not None:
            return FeedbackResult(earlier, created=False)
    try:
        row = repo.add_feedback(
            session,
            routed_id=item.id,
            broker_id=broker.id,
            decision=decision,
            reason_code=reason_code,
            comment=comment or None,
        )
    except IntegrityError as exc:  # uq_feedback_verdict: stored some other way meanwhile
        raise ConflictError(f"your {decision} of inbox item {item.id} is already stored") from exc
    return FeedbackResult(row, created=True)


def set_due(session: Session, deal: DealRow, *, due_on: date | None, actor: str) -> DealEventRow:
    """Set (or clear) the date by which the broker means to have moved the deal on; audited as
    a note. A past date is refused for an open deal (it would be overdue at once)."""
    if due_on is not None and due_on < date.today() and deal.stage in OPEN:
        raise InvalidInputError(f"the due date {due_on.isoformat()} is in the past")
    deal.due_on = due_on
    text = f"due {due_on.isoformat()}" if due_on else "due date cleared"
    return repo.add_event(session, deal_id=deal.id, actor=actor, kind="note", note=text)
