"""routing state of needs; routing reasons in each reader's language

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A need's routing outcome: pending (not routed yet), routed, unrouted (nobody could take
    # it; the reason says why, in each language) or closed (a deal on it was agreed).
    with op.batch_alter_table("needs") as batch:
        batch.add_column(
            sa.Column("routing_state", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("routing_reason", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_needs_routing_state", ["routing_state"])
    # Rows written before this revision keep their one (English) reason.
    with op.batch_alter_table("routed_matches") as batch:
        batch.add_column(sa.Column("reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routed_matches") as batch:
        batch.drop_column("reasons")
    with op.batch_alter_table("needs") as batch:
        batch.drop_index("ix_needs_routing_state")
        batch.drop_column("routed_at")
        batch.drop_column("routing_reason")
        batch.drop_column("routing_state")
