"""Alembic environment: runs migrations on the engine handed over by matcher.store.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from matcher.store.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 0x7EC4_0002


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no engine or sqlalchemy.url given to the migrations")
        engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together on one database migrate one after another: the
            # others wait here, then find the schema at head and do nothing.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
