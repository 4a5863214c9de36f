"""explanations in each reader's language

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before this revision keep their one (English) explanation; readers of
    # another language fall back to it.
    for table in ("matches", "routed_matches"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("explanations", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("matches", "routed_matches"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("explanations")
