"""the exchange market (a technology's licensing terms and asking price), a deal's due date and
its contract registration (type, value, currency, signing date, parties)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 13:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TECHNOLOGIES: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("licensing_terms", sa.Text()),
    ("asking_min", sa.Float()),
    ("asking_max", sa.Float()),
    ("asking_currency", sa.String(3)),
)
DEALS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("due_on", sa.Date()),
    ("contract_type", sa.String(16)),
    ("contract_value", sa.Float()),
    ("contract_currency", sa.String(3)),
    ("signed_on", sa.Date()),
    ("parties", sa.JSON()),
)


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN, nullable, no default: see 0009 on why not batch mode.
    for name, kind in TECHNOLOGIES:
        op.add_column("technologies", sa.Column(name, kind, nullable=True))
    for name, kind in DEALS:
        op.add_column("deals", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _ in DEALS:
        op.drop_column("deals", name)
    for name, _ in TECHNOLOGIES:
        op.drop_column("technologies", name)
