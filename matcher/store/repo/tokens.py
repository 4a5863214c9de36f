"""API tokens: issued once in plain text, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.store.models import ApiTokenRow


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session, *, role: str, broker_id: int | None = None, label: str = ""
) -> str:
    """Create a token for an admin or a broker; the plain text is returned once, never stored."""
    if role not in ("admin", "broker"):
        raise ValueError(f"unknown role {role!r}")
    token = f"tm_{role[0]}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiTokenRow(token_hash=hash_token(token), role=role, broker_id=broker_id, label=label)
    )
    return token


def find_token(session: Session, token: str) -> ApiTokenRow | None:
    """The live token row for a presented bearer token."""
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token)))
    return row if row is not None and not row.revoked else None
