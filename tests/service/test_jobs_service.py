"""The service queues its background work in the write's transaction, and a separate
``matcher worker`` process (the real command, real encoder) does it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.config import ApiSettings
from api.main import create_app
from matcher import jobs
from matcher.store.models import JobRow, NeedRow
from tests.conftest import issue
from tests.service.authz_world import need_body

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"


def test_the_service_queues_and_a_matcher_worker_process_routes(service_engine: Any) -> None:
    settings = ApiSettings(
        background_matching=True,
        in_process_worker=False,
        form_rate="10000/minute",
        token_rate="100000/minute",
    )
    token = issue(service_engine, "admin")
    with TestClient(create_app(service_engine, settings)) as client:
        created = client.post(
            f"{API}/needs",
            json={
                **need_body("jobs"),
                "title": "Antifouling hull coating without biocides for tug boats",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        need_id = created.json()["id"]
        with service_engine.sessions() as session:
            queued = list(session.scalars(select(JobRow)))
            assert [(j.kind, j.args) for j in queued] == [("match_need", {"need_id": need_id})]
            assert session.get(NeedRow, need_id).routing_state == "pending"
        env = {
            **os.environ,
            "MATCHER_HOME": str(service_engine.settings.home),
            "MATCHER_JOBS_POLL_S": "0.1",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "matcher", "worker", "--concurrency", "1"], cwd=ROOT, env=env
        )
        try:
            assert jobs.drain(service_engine, timeout=180)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
    with service_engine.sessions() as session:
        assert session.get(NeedRow, need_id).routing_state != "pending"
        assert not list(session.scalars(select(JobRow)))
