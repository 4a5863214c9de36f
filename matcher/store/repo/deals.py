"""Deals' reads and writes: inbox items, deals, their audit trail, feedback."""

from __future__ import annotations

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from matcher.store.models import (
    BrokerRow,
    DealEventRow,
    DealRow,
    FeedbackRow,
    RoutedMatchRow,
)


def routed(session: Session, routed_id: int) -> RoutedMatchRow | None:
    """An inbox item by id."""
    return session.get(RoutedMatchRow, routed_id)


def broker(session: Session, broker_id: int) -> BrokerRow | None:
    """A broker by id."""
    return session.get(BrokerRow, broker_id)


def inbox(
    session: Session, *, broker_id: int, state: str | None, limit: int, offset: int
) -> list[RoutedMatchRow]:
    """A broker's inbox items, newest first."""
    query = select(RoutedMatchRow).where(RoutedMatchRow.broker_id == broker_id)
    if state is not None:
        query = query.where(RoutedMatchRow.state == state)
    query = query.order_by(RoutedMatchRow.created_at.desc(), RoutedMatchRow.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def move_item(
    session: Session, item: RoutedMatchRow, *, broker_id: int, expected: str, to: str
) -> bool:
    """Set an inbox item's state if it is still ``expected`` and still in this broker's inbox.

    One conditional UPDATE: the database lets one of several concurrent moves from a state
    through (a row lock on PostgreSQL, the write lock on SQLite) and the others match no row.
    The item is then reloaded either way, so it shows the state it holds now.

    Returns:
        Whether this call moved the item.
    """
    stmt = (
        update(RoutedMatchRow)
        .where(
            RoutedMatchRow.id == item.id,
            RoutedMatchRow.broker_id == broker_id,
            RoutedMatchRow.state == expected,
        )
        .values(state=to)
        .execution_options(synchronize_session=False)
    )
    moved = _rowcount(session.execute(stmt)) == 1
    session.refresh(item)
    return moved


def move_deal(
    session: Session, row: DealRow, *, expected: str, to: str, lost_reason: str | None
) -> bool:
    """Set a deal's stage (and lost reason) if it is still at ``expected``; then reload it.

    Like ``move_item``: of concurrent moves from one stage, the database lets one through.

    Returns:
        Whether this call moved the deal.
    """
    values: dict[str, object] = {"stage": to}
    if lost_reason is not None:
        values["lost_reason"] = lost_reason
    stmt = (
        update(DealRow)
        .where(DealRow.id == row.id, DealRow.stage == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    moved = _rowcount(session.execute(stmt)) == 1
    session.refresh(row)
    return moved


def _rowcount(result: object) -> int:
    """Rows an UPDATE matched."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def deal(session: Session, deal_id: int) -> DealRow | None:
    """A deal by id."""
    return session.get(DealRow, deal_id)


def deal_of_routed(session: Session, routed_id: int) -> int | None:
    """The id of the deal an inbox item was claimed as."""
    return session.scalar(select(DealRow.id).where(DealRow.routed_id == routed_id))


def add_deal(session: Session, item: RoutedMatchRow, *, broker_id: int) -> DealRow:
    """A new deal (stage ``claimed``) on an inbox item; flushed so it has an id."""
    row = DealRow(
        routed_id=item.id,
        broker_id=broker_id,
        need_id=item.need_id,
        technology_id=item.technology_id,
        stage="claimed",
    )
    session.add(row)
    session.flush()
    return row


def add_event(
    session: Session,
    *,
    deal_id: int,
    actor: str,
    kind: str,
    from_stage: str | None = None,
    to_stage: str | None = None,
    note: str | None = None,
) -> DealEventRow:
    """One entry of a deal's audit trail."""
    event = DealEventRow(
        deal_id=deal_id,
        actor=actor,
        kind=kind,
        from_stage=from_stage,
        to_stage=to_stage,
        note=note,
    )
    session.add(event)
    session.flush()
    return event


def events(session: Session, deal_id: int) -> list[DealEventRow]:
    """A deal's audit trail, oldest first."""
    stmt = select(DealEventRow).where(DealEventRow.deal_id == deal_id)
    return list(session.scalars(stmt.order_by(DealEventRow.created_at, DealEventRow.id)))


def deals(
    session: Session,
    *,
    broker_id: int | None,
    stage: str | None,
    limit: int,
    offset: int,
) -> list[DealRow]:
    """Deals, newest first, optionally one broker's and one stage's."""
    query = select(DealRow)
    if broker_id is not None:
        query = query.where(DealRow.broker_id == broker_id)
    if stage is not None:
        query = query.where(DealRow.stage == stage)
    query = query.order_by(DealRow.created_at.desc(), DealRow.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def feedback_given(
    session: Session, *, routed_id: int, broker_id: int, decision: str
) -> FeedbackRow | None:
    """The broker's earlier feedback of this decision on the item, if any."""
    stmt = select(FeedbackRow).where(
        FeedbackRow.routed_id == routed_id,
        FeedbackRow.broker_id == broker_id,
        FeedbackRow.decision == decision,
    )
    return session.scalar(stmt.order_by(FeedbackRow.id).limit(1))


def add_feedback(
    session: Session,
    *,
    routed_id: int,
    broker_id: int,
    decision: str,
    reason_code: str | None,
    comment: str | None,
) -> FeedbackRow:
    """Store a broker's verdict on an inbox item; flushed so it has an id."""
    row = FeedbackRow(
        routed_id=routed_id,
        broker_id=broker_id,
        decision=decision,
        reason_code=reason_code,
        comment=comment,
    )
    session.add(row)
    session.flush()
    return row
