"""Routing's reads and writes: brokers and their load, routed pairs, needs by routing state."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from matcher.domain import Match
from matcher.store.models import BrokerRow, DealRow, NeedRow, RoutedMatchRow, utcnow

OPEN_STAGES = ("claimed", "contacted", "nda_signed", "negotiating")
WAITING = ("new", "seen")  # routed to a broker, not yet claimed or declined
RETURNED = "returned"  # taken back from a lapsed broker, to be routed again


def brokers(session: Session, *, lock: bool = False) -> list[BrokerRow]:
    """Every broker, by id; with ``lock``, their rows held until commit (FOR UPDATE).

    Routing locks them before it reads the brokers' loads: a routing elsewhere that could fill
    the same broker waits until this one's items are committed, then counts them. (SQLite has
    no row locks; its one writer at a time serializes routings already.)
    """
    stmt = select(BrokerRow).order_by(BrokerRow.id)
    return list(session.scalars(stmt.with_for_update() if lock else stmt))


def broker_loads(session: Session, broker_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Open deals plus waiting inbox items per broker, in two grouped queries."""
    deals = select(DealRow.broker_id, func.count()).where(DealRow.stage.in_(OPEN_STAGES))
    waiting = select(RoutedMatchRow.broker_id, func.count()).where(
        RoutedMatchRow.state.in_(WAITING)
    )
    if broker_ids is not None:
        ids = list(broker_ids)
        deals = deals.where(DealRow.broker_id.in_(ids))
        waiting = waiting.where(RoutedMatchRow.broker_id.in_(ids))
    loads: dict[int, int] = {}
    for query in (deals.group_by(DealRow.broker_id), waiting.group_by(RoutedMatchRow.broker_id)):
        for broker_id, n in session.execute(query):
            loads[broker_id] = loads.get(broker_id, 0) + int(n)
    return loads


def broker_load(session: Session, broker_id: int) -> int:
    """Open deals plus routed matches still waiting for the broker."""
    return broker_loads(session, [broker_id]).get(broker_id, 0)


def routed_pairs(session: Session, need_id: int) -> dict[int, RoutedMatchRow]:
    """The need's routed pairs by technology id (a pair is routed once)."""
    stmt = select(RoutedMatchRow).where(RoutedMatchRow.need_id == need_id)
    return {row.technology_id: row for row in session.scalars(stmt)}


def routed_technologies(session: Session, need_id: int) -> set[int]:
    """The technologies already routed for a need."""
    stmt = select(RoutedMatchRow.technology_id).where(RoutedMatchRow.need_id == need_id)
    return set(session.scalars(stmt))


def routed_row(
    match: Match,
    *,
    need_id: int,
    broker_id: int,
    reason: str,
    reasons: dict[str, str] | None = None,
) -> RoutedMatchRow:
    """The inbox row of a ranked match routed to a broker, explanations in every language."""
    return RoutedMatchRow(
        need_id=need_id,
        technology_id=match.technology_id,
        broker_id=broker_id,
        score=match.score,
        components=match.components.as_dict(),
        explanation=match.explanations.get("en", match.explanation),
        explanations=match.explanations or None,
        rank=match.rank,
        reason=reason,
        reasons=reasons,
        state="new",
    )


def reassign(
    row: RoutedMatchRow, match: Match, *, broker_id: int, reason: str, reasons: dict[str, str]
) -> None:
    """Give a returned pair to another broker, with today's score and explanation."""
    row.broker_id = broker_id
    row.score = match.score
    row.components = match.components.as_dict()
    row.explanation = match.explanations.get("en", match.explanation)
    row.explanations = match.explanations or None
    row.rank = match.rank
    row.reason = reason
    row.reasons = reasons
    row.state = "new"


def has_agreed_deal(session: Session, need_id: int) -> bool:
    """Whether a deal on the need was agreed (it is then never routed again)."""
    stmt = select(DealRow.id).where(DealRow.need_id == need_id, DealRow.stage == "agreed")
    return session.scalar(stmt.limit(1)) is not None


def set_routing_state(
    need: NeedRow, state: str, reason: dict[str, str] | None, *, routed: bool = False
) -> None:
    """Record a need's routing outcome (and when it was last routed)."""
    need.routing_state = state
    need.routing_reason = reason
    if routed:
        need.routed_at = utcnow()


def needs_in_state(
    session: Session, state: str, *, limit: int = 1000, offset: int = 0
) -> list[NeedRow]:
    """Active needs in a routing state, oldest first."""
    stmt = (
        select(NeedRow)
        .where(NeedRow.routing_state == state, NeedRow.status == "active")
        .order_by(NeedRow.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(stmt))


def count_in_state(session: Session, state: str) -> int:
    """How many active needs are in a routing state."""
    stmt = select(func.count()).select_from(NeedRow)
    stmt = stmt.where(NeedRow.routing_state == state, NeedRow.status == "active")
    return int(session.scalar(stmt) or 0)


def needs_with_returned(session: Session) -> list[int]:
    """Needs holding pairs taken back from lapsed brokers."""
    stmt = select(RoutedMatchRow.need_id).where(RoutedMatchRow.state == RETURNED).distinct()
    return sorted(session.scalars(stmt))


def lapsed_holders(session: Session, today: date) -> list[BrokerRow]:
    """Suspended or expired brokers who still hold waiting inbox items."""
    holding = select(RoutedMatchRow.broker_id).where(RoutedMatchRow.state.in_(WAITING))
    stmt = select(BrokerRow).where(
        BrokerRow.id.in_(holding),
        or_(BrokerRow.suspended.is_(True), BrokerRow.valid_until < today),
    )
    return list(session.scalars(stmt.order_by(BrokerRow.id)))


def take_back(session: Session, broker_id: int) -> list[RoutedMatchRow]:
    """Mark a broker's waiting (unclaimed) items as returned; their needs are routed again."""
    stmt = select(RoutedMatchRow).where(
        RoutedMatchRow.broker_id == broker_id, RoutedMatchRow.state.in_(WAITING)
    )
    rows = list(session.scalars(stmt))
    for row in rows:
        row.state = RETURNED
    return rows
