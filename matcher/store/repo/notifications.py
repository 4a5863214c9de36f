"""The e-mail outbox: one row per message to a submitter, at most one per event key."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from matcher.store.models import NotificationRow, utcnow


def add(session: Session, **values: Any) -> int | None:
    """Write a message (``key`` unique); its id, or None when one with that key exists."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    row = {"status": "pending", "attempts": 0, "created_at": now, "updated_at": now, **values}
    stmt = dialect.insert(NotificationRow).values(**row).on_conflict_do_nothing()
    return session.execute(stmt.returning(NotificationRow.id)).scalar()
