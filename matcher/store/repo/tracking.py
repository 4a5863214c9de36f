"""Tracking links of submitters without an account, and references for new submissions.

A submitter follows a record through ``/track/{token}``; only the token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.store.models import BrokerRow, DealRow, MatchRow, NeedRow, TechnologyRow
from matcher.store.repo.records import row_model

PREFIX = {Side.technologies: "T-", Side.needs: "N-"}  # of generated references
# Deal stages by the step a submitter sees, the furthest first.
_STEP_OF_STAGES = (
    ("agreed", {"agreed"}),
    ("negotiating", {"negotiating"}),
    ("claimed", {"claimed", "contacted", "nda_signed"}),
)


def tracking_hash(token: str) -> str:
    """What is stored for a tracking token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh, unguessable tracking token (shown once, stored only as its hash)."""
    return secrets.token_urlsafe(24)


def new_reference(session: Session, *, side: Side) -> str:
    """An unused reference such as ``N-3F9A0C1B``."""
    model = row_model(side)
    while True:
        ref = PREFIX[side] + secrets.token_hex(4).upper()
        if session.scalar(select(model.id).where(model.ref == ref)) is None:
            return ref


def attach_tracking(row: TechnologyRow | NeedRow, *, token: str) -> None:
    """Link a stored record to a tracking token (its hash is what is written)."""
    row.tracking_hash = tracking_hash(token)


@dataclass(frozen=True)
class Tracked:
    """What a tracking page shows of one submission: never more than its own status."""

    side: Side
    title: str
    submitted: Any  # datetime | None
    # received | matched | unrouted | claimed | negotiating | agreed | closed | archived
    status: str
    count: int  # matches found
    reason: dict[str, str] | None = None  # why an unrouted need waits, in each language
    # The broker working on it once a deal is open (claimed and later): name, e-mail.
    broker: tuple[str, str | None] | None = None
    ref: str = ""
    row_id: int = 0


def submission_status(
    session: Session, side: Side, row: TechnologyRow | NeedRow
) -> tuple[str, int]:
    """(status, number of matches) of a need or technology, from its matches and deals."""
    if side is Side.needs:
        deal_of, count = DealRow.need_id, func.count()
        match_of = MatchRow.need_id
    else:
        deal_of, count = DealRow.technology_id, func.count(func.distinct(MatchRow.need_id))
        match_of = MatchRow.technology_id
    stages = set(session.scalars(select(DealRow.stage).where(deal_of == row.id)))
    matches = session.scalar(select(count).where(match_of == row.id)) or 0
    for step, among in _STEP_OF_STAGES:
        if stages & among:
            return step, matches
    if stages:  # every deal closed as lost
        return "closed", matches
    if row.status != "active":
        return "archived", matches
    if isinstance(row, NeedRow) and row.routing_state == "unrouted":
        return "unrouted", matches
    return ("matched" if matches else "received"), matches


DEAL_STEPS = {step for step, _ in _STEP_OF_STAGES}


def deal_broker(
    session: Session, side: Side, row: TechnologyRow | NeedRow
) -> tuple[str, str | None] | None:
    """The name and e-mail of the broker of the record's furthest open deal."""
    deal_of = DealRow.need_id if side is Side.needs else DealRow.technology_id
    order = {stage: i for i, (_, among) in enumerate(_STEP_OF_STAGES) for stage in among}
    deals = [
        d for d in session.scalars(select(DealRow).where(deal_of == row.id)) if d.stage in order
    ]
    if not deals:
        return None
    deal = min(deals, key=lambda d: (order[d.stage], d.id))
    broker = session.get(BrokerRow, deal.broker_id)
    return None if broker is None else (broker.name, broker.email)


def find_tracked(session: Session, *, token: str) -> Tracked | None:
    """The submission a tracking token belongs to, or None."""
    digest = tracking_hash(token)
    for side in (Side.needs, Side.technologies):
        model = row_model(side)
        row: Any = session.scalar(select(model).where(model.tracking_hash == digest))
        if row is not None:
            status, count = submission_status(session, side, row)
            reason = row.routing_reason if status == "unrouted" else None
            broker = deal_broker(session, side, row) if status in DEAL_STEPS else None
            return Tracked(
                side, row.title, row.created_at, status, count, reason, broker, row.ref, row.id
            )
    return None
