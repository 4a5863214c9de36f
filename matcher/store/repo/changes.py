"""The change log of technologies and needs (``record_changes``): written by every write, read
by sequence by every process that keeps indexes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from matcher.store.models import RecordChangeRow

# Writers on PostgreSQL take this transaction-level advisory lock before they log, so changes
# commit in the order of their sequence numbers and a reader never skips one still in flight.
# (SQLite has one writer at a time.)
LOG_LOCK = 0x7EC4_0001


def log(session: Session, side: str, record_ids: Sequence[int]) -> list[int]:
    """Log records written or archived, inside the write's transaction; their sequence numbers."""
    if not record_ids:
        return []
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOG_LOCK})
    rows = [RecordChangeRow(side=side, record_id=int(i)) for i in record_ids]
    session.add_all(rows)
    session.flush()
    return [row.seq for row in rows]


def since(session: Session, seq: int, limit: int = 5000) -> list[tuple[int, str, int]]:
    """(seq, side, record id) of the changes after ``seq``, oldest first, at most ``limit``."""
    stmt = (
        select(RecordChangeRow.seq, RecordChangeRow.side, RecordChangeRow.record_id)
        .where(RecordChangeRow.seq > seq)
        .order_by(RecordChangeRow.seq)
        .limit(limit)
    )
    return [(int(s), str(side), int(i)) for s, side, i in session.execute(stmt)]


def last(session: Session) -> int:
    """The newest sequence number (0 when nothing was logged)."""
    return int(session.scalar(select(func.max(RecordChangeRow.seq))) or 0)
