"""broker competency as the national training scheme keeps it: each broker's certificate
history (certified, renewed, upgraded, suspended, reinstated) and training records

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE TABLE on both dialects: see 0009 on why not batch mode.
    op.create_table(
        "broker_certificates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "broker_id",
            sa.Integer(),
            sa.ForeignKey("brokers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("certificate_no", sa.String(64), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "broker_trainings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "broker_id",
            sa.Integer(),
            sa.ForeignKey("brokers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("course", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("training_base", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Brokers certified before this revision: their certificate as it stands is where their
    # history starts.
    op.execute(
        "INSERT INTO broker_certificates "
        "(broker_id, event, level, certificate_no, valid_until, actor, note, created_at) "
        "SELECT id, 'certified', level, certificate_no, valid_until, 'migration', "
        "'recorded when certificate history began', created_at FROM brokers"
    )


def downgrade() -> None:
    op.drop_table("broker_trainings")
    op.drop_table("broker_certificates")
