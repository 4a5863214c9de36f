"""Durable background work (matcher.jobs) on SQLite (the jobs table) and PostgreSQL
(procrastinate): transactional enqueue, back-off, kill -9 of a worker, webhook deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from matcher import jobs
from matcher.engine import Engine
from matcher.store.models import BrokerRow, JobRow, NeedRow, RoutedMatchRow, WebhookDeliveryRow
from tests.unit.fakes import FakeEncoder, broker, fake_settings, need, technologies

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(
    lease_s=2.0,
    heartbeat_s=0.5,
    sweep_every_s=1,
    poll_s=0.1,
    match_backoff_s=0.2,
    webhook_backoff_s=0.3,
    webhook_timeout_s=2.0,
)


@pytest.fixture
def engine(tmp_path: Path, database_url: str) -> Iterator[Engine]:
    """A fake-encoder engine with three technologies and two brokers, fast job settings."""
    url = None if database_url.startswith("sqlite") else database_url
    eng = Engine(fake_settings(tmp_path / "home", url), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())
    eng.save_records("brokers", [broker("B-1"), broker("B-2")])
    jobs.configure(jobs.JobSettings(**FAST))
    yield eng
    jobs.configure(jobs.JobSettings())
    eng.close()


def add_need(engine: Engine, ref: str) -> int:
    """Store a need and queue its matching in the same transaction; its id."""
    ids: list[int] = []

    def queue(session: Any, rows: list[Any]) -> None:
        for row in rows:
            jobs.enqueue(session, "match_need", {"need_id": row.id}, key=str(row.id))
            ids.append(row.id)

    engine.save_records("needs", [need(ref)], before_commit=queue)
    return ids[0]


def outstanding(engine: Engine) -> int:
    with engine.sessions() as session:
        if engine.db.dialect.name == "postgresql":
            query = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name <> 'maintenance'"
            return session.scalar(text(query)) or 0
        return session.scalar(select(func.count()).select_from(JobRow)) or 0


def routed_pairs(engine: Engine, need_id: int) -> list[tuple[int, int]]:
    with engine.sessions() as session:
        rows = session.scalars(select(RoutedMatchRow).where(RoutedMatchRow.need_id == need_id))
        return sorted((r.technology_id, r.broker_id) for r in rows)


def deliveries(engine: Engine) -> list[WebhookDeliveryRow]:
    with engine.sessions() as session:
        return list(session.scalars(select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.id)))


def set_webhooks(engine: Engine, url: str, secret: str = "s" * 20) -> None:
    with engine.sessions() as session:
        for row in session.scalars(select(BrokerRow)):
            row.webhook_url, row.webhook_secret = url, secret
        session.commit()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 500 to the first ``failures`` POSTs of each
    delivery id, then 204; records each POST's body, headers and time; ``hang``: no answer."""

    def __init__(self, failures: int = 0, hang: bool = False) -> None:
        self.posts: list[tuple[bytes, dict[str, str], float]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((body, dict(self.headers), time.monotonic()))
                if hang:
                    time.sleep(30)
                    return
                delivery = self.headers["X-TechMatch-Delivery"]
                seen = sum(1 for _, h, _ in outer.posts if h["X-TechMatch-Delivery"] == delivery)
                self.send_response(500 if seen <= failures else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- in the writer's transaction -----------------------------------------------------------
def test_a_rolled_back_write_leaves_no_job(engine: Engine) -> None:
    def queue_then_fail(session: Any, rows: list[Any]) -> None:
        jobs.enqueue(session, "match_need", {"need_id": rows[0].id}, key=str(rows[0].id))
        raise RuntimeError("the write fails after queueing")

    with pytest.raises(RuntimeError):
        engine.save_records("needs", [need("N-1")], before_commit=queue_then_fail)
    assert outstanding(engine) == 0
    with engine.sessions() as session:
        assert session.scalar(select(func.count()).select_from(NeedRow)) == 0
    add_need(engine, "N-2")
    assert outstanding(engine) == 1


def test_pending_work_is_done_when_a_worker_starts(engine: Engine) -> None:
    """Jobs queued while no worker runs are there when one starts; a second write to the same
    need while its job waits adds no second job."""
    need_id = add_need(engine, "N-1")
    with engine.sessions.begin() as session:
        jobs.enqueue(session, "match_need", {"need_id": need_id}, key=str(need_id))
    assert outstanding(engine) == 1
    workers = jobs.Workers(engine).start()
    try:
        assert workers.drain(timeout=60)
    finally:
        workers.stop()
    assert routed_pairs(engine, need_id)


# -- back-off, deliveries -------------------------------------------------------------------
def test_a_failed_delivery_is_retried_with_back_off_and_signed_once(engine: Engine) -> None:
    receiver = Receiver(failures=2)
    set_webhooks(engine, receiver.url, secret="k" * 20)
    workers = jobs.Workers(engine).start()
    try:
        need_id = add_need(engine, "N-1")
        assert workers.drain(timeout=60)
        # matched again later: no second delivery of what was delivered
        with engine.sessions.begin() as session:
            jobs.enqueue(session, "match_need", {"need_id": need_id}, key=str(need_id))
        assert workers.drain(timeout=60)
    finally:
        workers.stop()
        receiver.close()
    made = deliveries(engine)
    routed = routed_pairs(engine, need_id)
    assert routed and len(made) == len(routed)
    assert len({d.delivery_id for d in made}) == len(made)
    first = made[0]
    assert all(d.status == "delivered" and d.attempts == 3 for d in made)  # 500, 500, 204
    posts = [p for p in receiver.posts if json.loads(p[0])["delivery_id"] == first.delivery_id]
    assert len(posts) == 3
    gaps = [b[2] - a[2] for a, b in zip(posts, posts[1:], strict=False)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.55, gaps  # 0.3 s, then 0.6 s
    for body, headers, _ in receiver.posts:
        payload = json.loads(body)
        assert headers["X-TechMatch-Delivery"] == payload["delivery_id"]
        assert headers["X-TechMatch-Timestamp"] == payload["timestamp"]
        expected = "sha256=" + hmac.new(b"k" * 20, body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-TechMatch-Signature"], expected)
    assert len({json.loads(b)["delivery_id"] for b, _, _ in receiver.posts}) == len(made)


def test_a_webhook_that_never_answers_delays_no_routing(engine: Engine) -> None:
    receiver = Receiver(hang=True)
    set_webhooks(engine, receiver.url)
    workers = jobs.Workers(engine).start()
    try:
        first = add_need(engine, "N-1")
        wait_for(lambda: receiver.posts, timeout=30)  # a delivery of N-1 hangs now
        started = time.monotonic()
        second = add_need(engine, "N-2")
        wait_for(lambda: routed_pairs(engine, second), timeout=30)
        took = time.monotonic() - started
    finally:
        workers.stop(timeout=10)
        receiver.close()
    assert routed_pairs(engine, first)
    assert took < 1.5, f"routing waited {took:.1f} s behind a hanging webhook"


# -- a worker killed in the middle of a job -------------------------------------------------
def start_worker(home: Path, url: str | None, **env: str) -> subprocess.Popen[str]:
    environ = {
        **os.environ,
        **{f"MATCHER_JOBS_{k.upper()}": str(v) for k, v in FAST.items()},
        **env,
    }
    args = [sys.executable, "-m", "tests.service.jobs_worker", str(home)]
    process = subprocess.Popen(
        args + ([url] if url else []),
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("READY"), line
    return process


def test_kill_9_of_a_worker_mid_job_is_re_run_once(
    engine: Engine, tmp_path: Path, database_url: str
) -> None:
    receiver = Receiver()
    set_webhooks(engine, receiver.url)
    url = None if database_url.startswith("sqlite") else database_url
    home = tmp_path / "home"
    slow = start_worker(home, url, TEST_SLOW_ROUTE="1")
    try:
        need_id = add_need(engine, "N-1")
        assert slow.stdout is not None
        assert slow.stdout.readline().startswith("ROUTED")  # routed, deliveries not queued
        slow.kill()  # SIGKILL
        slow.wait(timeout=10)
        routed = routed_pairs(engine, need_id)
        assert routed and not deliveries(engine)
        assert outstanding(engine) == 1  # the job is still there, held by the dead worker
        worker = start_worker(home, url)
        try:
            assert jobs.drain(engine, timeout=60)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    finally:
        if slow.poll() is None:
            slow.kill()
        receiver.close()
    assert routed_pairs(engine, need_id) == routed  # routed exactly once
    made = deliveries(engine)
    assert len(made) == len(routed) and all(d.status == "delivered" for d in made)
    assert len(receiver.posts) == len(made)
