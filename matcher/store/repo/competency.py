"""Broker competency's reads and writes: certificate history, training records, and the rows a
broker's track record is counted from (routed items, verdicts, deals, stage moves)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.store.competency_models import BrokerCertificateRow, BrokerTrainingRow
from matcher.store.models import BrokerRow, DealEventRow, DealRow, FeedbackRow, RoutedMatchRow


def add_certificate_event(
    session: Session, broker: BrokerRow, *, event: str, actor: str, note: str | None = None
) -> BrokerCertificateRow:
    """Record an event of the broker's certificate, as the certificate stands after it."""
    if broker.id is None:
        session.flush()  # a broker certified in this transaction: its id
    row = BrokerCertificateRow(
        broker_id=broker.id,
        event=event,
        level=broker.level,
        certificate_no=broker.certificate_no,
        valid_until=broker.valid_until,
        actor=actor,
        note=note,
    )
    session.add(row)
    return row


def certificate_events(session: Session, broker_id: int) -> list[BrokerCertificateRow]:
    """A broker's certificate history, oldest first."""
    stmt = select(BrokerCertificateRow).where(BrokerCertificateRow.broker_id == broker_id)
    return list(session.scalars(stmt.order_by(BrokerCertificateRow.id)))


def add_training(
    session: Session,
    *,
    broker_id: int,
    course: str,
    level: str,
    taken_on: date,
    hours: float,
    training_base: str,
) -> BrokerTrainingRow:
    """A training record, flushed so it has an id."""
    row = BrokerTrainingRow(
        broker_id=broker_id,
        course=course,
        level=level,
        taken_on=taken_on,
        hours=hours,
        training_base=training_base,
    )
    session.add(row)
    session.flush()
    return row


def trainings(session: Session, broker_id: int) -> list[BrokerTrainingRow]:
    """A broker's training records, newest course first."""
    stmt = select(BrokerTrainingRow).where(BrokerTrainingRow.broker_id == broker_id)
    return list(
        session.scalars(stmt.order_by(BrokerTrainingRow.taken_on.desc(), BrokerTrainingRow.id))
    )


def certificate_taken(session: Session, certificate_no: str, *, but: int) -> str | None:
    """The reference of another broker holding (or having held) a certificate number."""
    holder = select(BrokerRow.ref).where(
        BrokerRow.certificate_no == certificate_no, BrokerRow.id != but
    )
    found = session.scalar(holder)
    if found is not None:
        return found
    held = (
        select(BrokerRow.ref)
        .join(BrokerCertificateRow, BrokerCertificateRow.broker_id == BrokerRow.id)
        .where(BrokerCertificateRow.certificate_no == certificate_no, BrokerRow.id != but)
    )
    return session.scalar(held.limit(1))


def routed_states(session: Session, broker_id: int) -> dict[str, int]:
    """How many items routed to the broker are in each state."""
    stmt = (
        select(RoutedMatchRow.state, func.count())
        .where(RoutedMatchRow.broker_id == broker_id)
        .group_by(RoutedMatchRow.state)
    )
    return {state: int(n) for state, n in session.execute(stmt)}


def verdicts(session: Session, broker_id: int) -> list[tuple[str, str | None]]:
    """The broker's verdicts: (accept | decline, reason code)."""
    stmt = select(FeedbackRow.decision, FeedbackRow.reason_code).where(
        FeedbackRow.broker_id == broker_id
    )
    return [(d, r) for d, r in session.execute(stmt.order_by(FeedbackRow.id))]


def deals_of(session: Session, broker_id: int) -> list[DealRow]:
    """The broker's deals, oldest first."""
    stmt = select(DealRow).where(DealRow.broker_id == broker_id).order_by(DealRow.id)
    return list(session.scalars(stmt))


def stage_moves(session: Session, deal_ids: Sequence[int]) -> list[DealEventRow]:
    """The stage events of the given deals, in the order they happened."""
    if not deal_ids:
        return []
    stmt = select(DealEventRow).where(
        DealEventRow.deal_id.in_(list(deal_ids)), DealEventRow.kind == "stage"
    )
    return list(session.scalars(stmt.order_by(DealEventRow.created_at, DealEventRow.id)))


def waiting_item(session: Session, routed_id: int, *, lock: bool = True) -> Any:
    """An inbox item by id (held until commit with ``lock``), or None."""
    stmt = select(RoutedMatchRow).where(RoutedMatchRow.id == routed_id)
    return session.scalar(stmt.with_for_update() if lock else stmt)
