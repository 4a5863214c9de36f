"""The OpenAPI document against the running service: schemathesis with every check, bounded.

The real server (uvicorn over a socket) on the demo data; schemathesis's own command line with
``--checks all``, a fixed seed and a few examples per operation, once with an admin's token and
once with a broker's who has routed items and a deal. Any server error, response that does not
match its declared schema, undeclared status or header, or accepted invalid input fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.main import create_app
from benchmarks.load import serve
from matcher.store.models import BrokerRow, NeedRow, RoutedMatchRow
from matcher.store.repo.tokens import issue_token

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261203
EXAMPLES = 4  # per operation and phase: several hundred requests per token
# Each token on the operations its role may use (the other role's answer only 403 there,
# which test_authorization_table checks row by row).
NOT_FOR = {"admin": "^/api/v1/brokers/me", "broker": "^/api/v1/admin/"}


def schemathesis_cli() -> list[str]:
    """The command line of the schemathesis installed beside this interpreter."""
    return [sys.executable, "-m", "schemathesis.cli"]


@pytest.fixture
def served(service_engine: Any, api_settings: Any) -> Iterator[str]:
    with serve(create_app(service_engine, api_settings)) as server:
        yield server.url


def broker_at_work(engine: Any) -> str:
    """A token of a broker with routed items in the inbox and a deal of their own."""
    with engine.sessions() as session:
        refs = list(session.scalars(select(NeedRow.ref).order_by(NeedRow.id).limit(20)))
    for ref in refs:
        outcome = engine.match_and_route(ref)
        if len(outcome.routed_ids) >= 1:
            break
    else:
        raise AssertionError("nothing was routed")
    with engine.sessions() as session:
        item = session.get(RoutedMatchRow, outcome.routed_ids[0])
        broker = session.get(BrokerRow, item.broker_id)
        broker_ref = broker.ref
    engine.claim(item.broker_id, item.id, actor=f"broker:{broker_ref}")
    with engine.sessions() as session:
        token = issue_token(session, role="broker", broker_id=item.broker_id, label="contract")
        session.commit()
    return token


def admin_token(engine: Any) -> str:
    with engine.sessions() as session:
        token = issue_token(session, role="admin", label="contract")
        session.commit()
    return token


def run_schemathesis(
    url: str, token: str, role: str, report: Path
) -> subprocess.CompletedProcess[str]:
    command = [
        *schemathesis_cli(),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--include-path-regex",
        "^/api/v1/",
        "--exclude-path-regex",
        NOT_FOR[role],
        "--request-timeout",
        "60",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, cwd=report.parent
    )


@pytest.mark.parametrize("role", ["admin", "broker"])
def test_the_service_keeps_its_openapi_contract(
    served: str, service_engine: Any, tmp_path: Path, role: str
) -> None:
    token = admin_token(service_engine) if role == "admin" else broker_at_work(service_engine)
    done = run_schemathesis(served, token, role, tmp_path / "report")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-12_000:]
    generated = re.search(r"(\d+) generated", out)
    assert generated is not None and int(generated.group(1)) >= 300, out[-2_000:]


def test_errors_are_declared_with_their_bodies(client: Any) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Problem"]["properties"]["detail"]["type"] == "string"
    claim = document["paths"]["/api/v1/brokers/me/inbox/{routed_id}/claim"]["post"]["responses"]
    assert {"201", "401", "403", "404", "409", "414", "422", "429"} <= set(claim)
    for status in ("401", "403", "404", "409", "422", "429"):
        body = claim[status]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Problem"}
    assert "Retry-After" in claim["429"]["headers"]
    create = document["paths"]["/api/v1/technologies"]["post"]["responses"]
    assert {"400", "413", "503"} <= set(create)
    # what the service answers is what the document says
    refused = client.post("/api/v1/search", json={"text": ""})
    assert refused.status_code == 401 and isinstance(refused.json()["detail"], str)


def test_a_wrong_method_lists_every_method_of_the_path(client: Any) -> None:
    answer = client.put("/api/v1/technologies/T-0001")
    assert answer.status_code == 405
    assert {"GET", "PATCH", "DELETE"} <= set(answer.headers["allow"].split(", "))
