"""who created a record; the audit trail of record changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Records imported or created before this revision have no creating broker: only an
    # administrator, or a broker with an open deal on them, may change them.
    # A plain column, no foreign key: adding a constraint makes SQLite copy the table, and
    # dropping the old copy would cascade to routed matches, deals and feedback.
    for table in ("technologies", "needs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("created_by", sa.Integer(), nullable=True))
    op.create_table(
        "record_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_record_events_record", "record_events", ["side", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_record_events_record", table_name="record_events")
    op.drop_table("record_events")
    for table in ("technologies", "needs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("created_by")
