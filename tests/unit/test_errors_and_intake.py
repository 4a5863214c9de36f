"""Typed errors through the API's one table, and the submit path's single transaction.

A fake encoder, no model: the engine's errors answer their status with a message (an encoder
that cannot serve: 503), and ``Engine.submit`` writes a record and its tracking link together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import TEXT, FakeEncoder, fake_settings, technologies
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import errors
from api.config import ApiSettings
from api.main import create_app
from matcher.catalog import RecordExistsError
from matcher.deal import IllegalTransitionError
from matcher.domain import Side
from matcher.embed import EncoderUnavailableError
from matcher.engine import Engine
from matcher.errors import (
    FieldError,
    MatcherError,
    NotFoundError,
    PermissionDeniedError,
    RecordInvalidError,
)
from matcher.index.base import VectorIndexError
from matcher.store.models import NeedRow
from matcher.store.repo import tokens, tracking
from matcher.store.repo.ownership import record_events

API = "/api/v1"
NEED = {
    "enterprise": "Example Motors",
    "title": "Driver fatigue detection with a radar sensor chip",
    "description": TEXT,
    "domains": ["01.07"],
    "trl_min": 5,
    "region_scope": "international",
    "home_region": "CN-JS",
}


class UnavailableEncoder(FakeEncoder):
    """An encoder whose model cannot be loaded here."""

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        raise EncoderUnavailableError("the embedding model all-MiniLM-L6-v2 is not installed")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(fake_settings(tmp_path / "home"), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())
    yield eng
    eng.close()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, ApiSettings(background_matching=False))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin(engine: Engine) -> dict[str, str]:
    with engine.sessions() as session:
        token = tokens.issue_token(session, role="admin")
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def needs(engine: Engine) -> int:
    with engine.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(NeedRow)) or 0)


# -- the API's table -----------------------------------------------------------------------
def test_an_unavailable_encoder_answers_503_with_its_message(
    engine: Engine, client: TestClient, admin: dict[str, str]
) -> None:
    engine.use_encoder(UnavailableEncoder())
    response = client.post(f"{API}/search", json={"text": "radar sensor"}, headers=admin)
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": "the embedding model all-MiniLM-L6-v2 is not installed"}
    assert response.headers["Retry-After"]


def test_engine_errors_reach_the_client_through_the_table(
    client: TestClient, admin: dict[str, str]
) -> None:
    missing = client.post(f"{API}/admin/brokers/B-404/suspend", headers=admin)
    assert missing.status_code == 404 and "B-404" in missing.json()["detail"]
    bad = client.post(f"{API}/search", json={"text": "radar", "domains": ["99.99"]}, headers=admin)
    assert bad.status_code == 422 and "99.99" in bad.json()["detail"]


def _raising(exc: Exception) -> TestClient:
    app = FastAPI()
    errors.register(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (NotFoundError("no need with id 'N-9'"), 404),
        (IllegalTransitionError("cannot move a deal from claimed to agreed"), 409),
        (RecordExistsError("a need with id 'N-1' already exists"), 409),
        (PermissionDeniedError("administrators only"), 403),
        (VectorIndexError("the technologies index is being rebuilt"), 503),
        (EncoderUnavailableError("no model"), 503),
        (MatcherError("something the engine did not expect"), 500),
    ],
)
def test_each_kind_has_its_status_and_message(exc: Exception, status: int) -> None:
    response = _raising(exc).get("/boom")
    assert response.status_code == status
    assert response.json() == {"detail": str(exc)}


def test_an_invalid_record_answers_422_with_its_field_errors() -> None:
    problem = FieldError(
        "unknown_region", ("home_region",), "unknown region code 'XX'", {"code": "XX"}
    )
    response = _raising(RecordInvalidError([problem], what="need")).get("/boom")
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "invalid need: home_region: unknown region code 'XX'"
    assert body["errors"] == [
        {
            "type": "unknown_region",
            "loc": ["home_region"],
            "msg": "unknown region code 'XX'",
            "ctx": {"code": "XX"},
        }
    ]


def test_an_unexpected_error_is_a_bare_500() -> None:
    response = _raising(RuntimeError("password=hunter2 at /srv/secret.db")).get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "hunter2" not in response.text


# -- Engine.submit -------------------------------------------------------------------------
def test_submit_stores_the_record_with_its_tracking_link(engine: Engine) -> None:
    submission = engine.submit(NEED, side=Side.needs)
    assert submission.ref.startswith("N-") and len(submission.token) >= 32
    with engine.sessions() as session:
        found = tracking.find_tracked(session, token=submission.token)
        row = session.get(NeedRow, submission.id)
    assert found is not None and found.title == NEED["title"] and found.status == "received"
    assert row is not None and row.ref == submission.ref
    assert row.tracking_hash == tracking.tracking_hash(submission.token)
    assert submission.id in engine.indexes["needs"].index  # indexed, ready to match
    with engine.sessions() as session:  # audited in the same transaction, by the submitter
        (event,) = record_events(session, side=None, ref=submission.ref, limit=5, offset=0)
        assert (event.action, event.actor, event.before) == ("create", "submitter", None)
        assert event.after is not None and event.after["title"] == NEED["title"]


def test_submit_reports_field_errors_and_stores_nothing(engine: Engine) -> None:
    with pytest.raises(RecordInvalidError) as caught:
        engine.submit({**NEED, "trl_min": 12, "home_region": "XX-99"}, side=Side.needs)
    assert {(e.type, e.loc) for e in caught.value.errors} == {
        ("less_than_equal", ("trl_min",)),
        ("unknown_region", ("home_region",)),
    }
    assert needs(engine) == 0


def test_a_taken_reference_is_refused(engine: Engine) -> None:
    engine.submit({**NEED, "id": "N-1"}, side=Side.needs)
    with pytest.raises(RecordExistsError):
        engine.submit({**NEED, "id": "N-1"}, side=Side.needs)
    assert needs(engine) == 1


def test_when_the_tracking_link_fails_no_record_is_left(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record and tracking link are one transaction: a clash of tracking hashes (the unique
    index refuses the second) leaves no second record, in the store or in the index."""
    first = engine.submit(NEED, side=Side.needs)
    monkeypatch.setattr(tracking, "new_token", lambda: first.token)
    indexed = len(engine.indexes["needs"].index)
    with pytest.raises(Exception, match="(?i)unique"):
        engine.submit({**NEED, "title": "A second need on radar fatigue"}, side=Side.needs)
    assert needs(engine) == 1
    assert len(engine.indexes["needs"].index) == indexed
    with engine.sessions() as session:
        assert session.scalar(select(NeedRow.title)) == NEED["title"]
        events = record_events(session, side=Side.needs, ref=None, limit=5, offset=0)
        assert [e.ref for e in events] == [first.ref]  # no entry for what was not stored
