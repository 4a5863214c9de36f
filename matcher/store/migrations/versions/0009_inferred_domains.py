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
    # Records stored before this revision had their codes set by a person.
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "domains_inferred", sa.Boolean(), nullable=False, server_default=sa.false()
                )
            )
            batch.add_column(sa.Column("domain_confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("domain_confidence")
            batch.drop_column("domains_inferred")
