"""The deal pipeline: stages, legal transitions and the audit trail."""

from __future__ import annotations

from sqlalchemy.orm import Session

from matcher.errors import ConflictError
from matcher.store.models import DealEventRow, DealRow

STAGES = ("claimed", "contacted", "nda_signed", "negotiating", "agreed", "closed_lost")
OPEN = ("claimed", "contacted", "nda_signed", "negotiating")
NEXT = {
    "claimed": "contacted",
    "contacted": "nda_signed",
    "nda_signed": "negotiating",
    "negotiating": "agreed",
}


class IllegalTransitionError(ConflictError):
    """A stage change the pipeline does not allow."""


def allowed(current: str) -> list[str]:
    """Stages reachable from the current one."""
    if current not in OPEN:
        return []
    return [NEXT[current], "closed_lost"]


def change_stage(
    session: Session,
    deal: DealRow,
    *,
    to: str,
    actor: str,
    note: str | None = None,
    reason: str | None = None,
) -> DealEventRow:
    """Move a deal one step forward, or close it as lost (reason required); audited."""
    if to not in STAGES:
        raise IllegalTransitionError(f"unknown stage {to!r}; stages are {', '.join(STAGES)}")
    if to not in allowed(deal.stage):
        options = ", ".join(allowed(deal.stage)) or "none (the deal is closed)"
        raise IllegalTransitionError(
            f"cannot move a deal from {deal.stage} to {to}; allowed next: {options}"
        )
    if to == "closed_lost":
        if not reason or not reason.strip():
            raise IllegalTransitionError("closing a deal as lost needs a reason")
        deal.lost_reason = reason.strip()
    event = DealEventRow(
        deal_id=deal.id, actor=actor, kind="stage", from_stage=deal.stage, to_stage=to, note=note
    )
    deal.stage = to
    session.add(event)
    return event


def add_note(session: Session, deal: DealRow, *, actor: str, note: str) -> DealEventRow:
    """Attach a note to a deal's audit trail."""
    if not note.strip():
        raise ValueError("the note is empty")
    event = DealEventRow(deal_id=deal.id, actor=actor, kind="note", note=note.strip())
    session.add(event)
    return event
