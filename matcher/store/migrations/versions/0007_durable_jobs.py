"""durable background jobs: the jobs table (embedded store), procrastinate's schema
(PostgreSQL), one webhook delivery per routed match and broker under a delivery id

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_jobs_ready", "jobs", ["queue", "state", "run_after"])
    waiting = sa.text("state = 'todo'")
    op.create_index(
        "uq_jobs_waiting_key",
        "jobs",
        ["key"],
        unique=True,
        sqlite_where=waiting,
        postgresql_where=waiting,
    )

    # One delivery per routed match and broker (an older store may hold several: keep the last)
    bind = op.get_bind()
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("delivery_id", sa.String(36), nullable=True))
    bind.execute(
        sa.text(
            "DELETE FROM webhook_deliveries WHERE id NOT IN "
            "(SELECT MAX(id) FROM webhook_deliveries GROUP BY routed_id, broker_id)"
        )
    )
    for (row_id,) in bind.execute(sa.text("SELECT id FROM webhook_deliveries")).all():
        bind.execute(
            sa.text("UPDATE webhook_deliveries SET delivery_id = :d WHERE id = :i"),
            {"d": str(uuid.uuid4()), "i": row_id},
        )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("delivery_id", existing_type=sa.String(36), nullable=False)
        batch.create_unique_constraint("uq_delivery_id", ["delivery_id"])
        batch.create_unique_constraint("uq_delivery_routed", ["routed_id", "broker_id"])

    if bind.dialect.name == "postgresql":
        _apply_procrastinate_schema(bind)


def _apply_procrastinate_schema(bind: sa.Connection) -> None:
    """procrastinate's own tables, functions and triggers (its schema for the pinned 3.10.0).

    Its ``apply_schema`` is not idempotent, hence the guard; it runs on the raw psycopg
    connection, inside this migration's transaction (SQLAlchemy would read its ``%`` as
    placeholders). Upgrading procrastinate means a migration with its ``sql/migrations`` files.
    """
    from procrastinate.schema import SchemaManager

    if bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
        return
    raw = bind.connection.driver_connection
    assert raw is not None
    raw.execute(SchemaManager.get_schema())  # type: ignore[attr-defined]


def downgrade() -> None:
    # procrastinate's schema stays (it may hold jobs); drop it with its own tools if wanted
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("uq_delivery_routed", type_="unique")
        batch.drop_constraint("uq_delivery_id", type_="unique")
        batch.drop_column("delivery_id")
    op.drop_index("uq_jobs_waiting_key", table_name="jobs")
    op.drop_index("ix_jobs_ready", table_name="jobs")
    op.drop_table("jobs")
