"""domain codes inferred from the text: a flag and the engine's confidence on each record

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("technologies", "needs")


def upgrade() -> None:
    # Records stored before this revision had their codes set by a person. Plain ALTER TABLE
    # ADD COLUMN on both dialects: batch mode would recreate the tables on SQLite (an expression
    # default forces it), and dropping them there cascades to routed matches and verdicts.
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("domains_inferred", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
        op.add_column(table, sa.Column("domain_confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "domain_confidence")
        op.drop_column(table, "domains_inferred")
