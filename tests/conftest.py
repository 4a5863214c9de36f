"""Shared fixtures: the real model (loaded once), engines on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from matcher.config import REPO_DATA_DIR, Settings
from matcher.embed import Encoder, get_encoder

PG_ADMIN_URL = os.environ.get(
    "MATCHER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The real packaged MiniLM model, loaded once per test session."""
    return get_encoder("all-MiniLM-L6-v2")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of the PostgreSQL server; skipped when absent, but required under CI."""
    problem = _pg_available()
    if problem is not None:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL} ({problem})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run the PostgreSQL tests (see scripts/services.sh)")
        pytest.skip(message)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"techmatch_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


def make_settings(home: Path, database_url: str | None = None, **overrides: object) -> Settings:
    """Settings for a throw-away data directory."""
    return Settings(
        home=home, database_url=database_url, data_dir=REPO_DATA_DIR, progress=False, **overrides
    )


@pytest.fixture
def engine(tmp_path: Path, database_url: str, encoder: Encoder):  # type: ignore[no-untyped-def]
    """An engine on an empty store (SQLite or PostgreSQL) with the real model."""
    from matcher.engine import Engine

    eng = Engine(make_settings(tmp_path / "home", database_url), encoder=encoder)
    yield eng
    eng.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path, encoder: Encoder):  # type: ignore[no-untyped-def]
    """An engine on an empty SQLite store with the real model."""
    from matcher.engine import Engine

    eng = Engine(make_settings(tmp_path / "home"), encoder=encoder)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def demo_engine(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder):  # type: ignore[no-untyped-def]
    """One engine with the whole demo data set loaded, shared by the read-only demo tests."""
    from matcher.engine import Engine

    eng = Engine(make_settings(tmp_path_factory.mktemp("demo")), encoder=encoder)
    eng.load_demo()
    yield eng
    eng.close()
