"""one verdict per inbox item, broker and decision

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Parallel requests could store one verdict several times before this revision; keep the
    # first of each (what a repeated accept answers with), so the constraint can be made.
    op.execute(
        sa.text(
            "DELETE FROM feedback WHERE id NOT IN "
            "(SELECT first_id FROM (SELECT MIN(id) AS first_id FROM feedback "
            "GROUP BY routed_id, broker_id, decision) AS firsts)"
        )
    )
    with op.batch_alter_table("feedback") as batch:
        batch.create_unique_constraint(
            "uq_feedback_verdict", ["routed_id", "broker_id", "decision"]
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_verdict", type_="unique")
