"""Brokers' reads and writes beyond routing: references, certificates, tokens, webhooks."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.store.models import ApiTokenRow, BrokerRow, WebhookDeliveryRow


def next_ref(session: Session) -> str:
    """The next free broker reference (``B-13`` after twelve brokers)."""
    n = (session.scalar(select(func.max(BrokerRow.id))) or 0) + 1
    while ref_taken(session, f"B-{n:02d}"):
        n += 1
    return f"B-{n:02d}"


def ref_taken(session: Session, ref: str) -> bool:
    """Whether a broker has this reference."""
    return session.scalar(select(BrokerRow.id).where(BrokerRow.ref == ref)) is not None


def certificate_holder(session: Session, certificate_no: str) -> str | None:
    """The reference of the broker holding a certificate number, if any."""
    stmt = select(BrokerRow.ref).where(BrokerRow.certificate_no == certificate_no)
    return session.scalar(stmt)


def by_ref(session: Session) -> list[BrokerRow]:
    """Every broker, by reference."""
    return list(session.scalars(select(BrokerRow).order_by(BrokerRow.ref)))


def revoke_tokens(session: Session, broker_id: int) -> int:
    """Revoke every token of a broker; how many."""
    rows = list(session.scalars(select(ApiTokenRow).where(ApiTokenRow.broker_id == broker_id)))
    for row in rows:
        row.revoked = True
    return len(rows)


def webhook_deliveries(
    session: Session, *, status: str | None, broker_id: int | None, limit: int, offset: int
) -> list[tuple[WebhookDeliveryRow, str | None]]:
    """Webhook deliveries, newest first, each with its broker's reference."""
    query = select(WebhookDeliveryRow, BrokerRow.ref).join(
        BrokerRow, BrokerRow.id == WebhookDeliveryRow.broker_id, isouter=True
    )
    if status is not None:
        query = query.where(WebhookDeliveryRow.status == status)
    if broker_id is not None:
        query = query.where(WebhookDeliveryRow.broker_id == broker_id)
    query = query.order_by(WebhookDeliveryRow.id.desc()).limit(limit).offset(offset)
    return [(row, ref) for row, ref in session.execute(query)]


def add_delivery(
    session: Session, *, broker_id: int, routed_id: int, url: str
) -> WebhookDeliveryRow:
    """A new webhook delivery record (pending), flushed so it has an id."""
    row = WebhookDeliveryRow(broker_id=broker_id, routed_id=routed_id, url=url)
    session.add(row)
    session.flush()
    return row
