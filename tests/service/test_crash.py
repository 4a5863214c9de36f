"""kill -9 of the real server in the middle of a stream of writes, then an ordinary restart
(``--no-demo``, no repair by hand): nothing acknowledged is lost, every acknowledged need is
matched and routed, the indexes verify clean, no temporary index files remain and no routed
match is duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from matcher.config import Settings
from matcher.route import RoutingState
from matcher.store.models import NeedRow, RoutedMatchRow
from tests.service.test_server_limits import free_port, wait_until_up

NEED = {
    "enterprise": "Crash Test Fittings Ltd.",
    "description": "Our hydraulic fittings corrode in salt spray within weeks; we need a "
    "coating or alloy that passes 1000 hours of salt spray and keeps the thread tolerances.",
    "domains": ["04"],
    "trl_min": 4,
    "region_scope": "international",
    "home_region": "CN-ZJ",
}


def start(home: Path, port: int, log: Path, *, demo: bool) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)]
    env = {
        **os.environ,
        "MATCHER_HOME": str(home),
        "MATCHER_API_TOKEN_RATE": "100000/minute",
        "MATCHER_API_FOLLOW_INTERVAL_S": "0.5",
    }
    return subprocess.Popen(
        args if demo else [*args, "--no-demo"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 60 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()


def verify(home: Path) -> subprocess.CompletedProcess[str]:
    """``matcher index verify`` on a data directory, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "matcher", "index", "verify"],
        env={**os.environ, "MATCHER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_kill_9_during_writes_then_an_ordinary_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(home, port, tmp_path / "server.log", demo=True)
    acknowledged: list[str] = []
    try:
        wait_until_up(server, url, tmp_path)
        tokens = (home / "demo-tokens.txt").read_text(encoding="utf-8").splitlines()
        admin = next(line.split("\t")[1] for line in tokens if line.startswith("admin\t"))
        auth = {"Authorization": f"Bearer {admin}"}
        stop = threading.Event()

        def write_stream() -> None:
            with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
                for n in range(200):
                    if stop.is_set():
                        return
                    body = {**NEED, "id": f"N-CRASH-{n:03d}", "title": f"Salt-proof fittings {n}"}
                    try:
                        answer = http.post("/api/v1/needs", json=body)
                    except httpx.TransportError:
                        return  # the server is gone: this one was never acknowledged
                    if answer.status_code == 201:
                        acknowledged.append(body["id"])

        writer = threading.Thread(target=write_stream)
        writer.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)  # in the middle of the stream
        server.wait(30)
        stop.set()
        writer.join(60)
        assert len(acknowledged) >= 8, "the stream never got going"

        # an ordinary restart: no demo load, no repair by hand
        server = start(home, port, tmp_path / "server.log", demo=False)
        wait_until_up(server, url, tmp_path)
        store = create_engine(Settings(home=home).effective_database_url)
        deadline = time.monotonic() + 240
        while True:
            with store.connect() as session:
                states = dict(
                    session.execute(
                        select(NeedRow.ref, NeedRow.routing_state).where(
                            NeedRow.ref.in_(acknowledged)
                        )
                    ).all()
                )
            if len(states) == len(acknowledged) and RoutingState.pending.value not in set(
                states.values()
            ):
                break
            assert time.monotonic() < deadline, f"not routed after the restart: {states}"
            time.sleep(1)
        assert set(states) == set(acknowledged)  # nothing acknowledged lost
    finally:
        stop_server(server)
    verified = verify(home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    leftovers = [p.name for p in home.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers
    store = create_engine(Settings(home=home).effective_database_url)
    with store.connect() as session:
        pairs = session.execute(
            select(RoutedMatchRow.need_id, RoutedMatchRow.technology_id, func.count())
            .group_by(RoutedMatchRow.need_id, RoutedMatchRow.technology_id)
            .having(func.count() > 1)
        ).all()
    assert not pairs, pairs


def test_a_killed_index_save_is_undone_at_the_next_start(tmp_path: Path) -> None:
    import shutil

    from matcher.engine import Engine
    from matcher.index.collection import CollectionIndex
    from tests.unit.fakes import FakeEncoder, fake_settings, technologies

    settings = fake_settings(tmp_path / "home")
    engine = Engine(settings, encoder=FakeEncoder())
    engine.save_records("technologies", technologies())
    directory = engine.indexes["technologies"].directory
    engine.close()
    # what kill -9 leaves in the middle of a save: a half-written new version, and the old one
    # moved aside with the new one not yet in its place (between the two renames)
    unfinished = directory.with_name(f".{directory.name}.tmp-killed")
    unfinished.mkdir()
    (unfinished / "vectors.npy").write_bytes(b"half")
    shutil.move(directory, directory.with_name(f".{directory.name}.old-123"))

    def no_rebuild(self: CollectionIndex) -> int:
        raise AssertionError("the index was rebuilt instead of restored")

    again = Engine(settings, encoder=FakeEncoder())
    try:
        original = CollectionIndex._rebuild_own
        CollectionIndex._rebuild_own = no_rebuild  # type: ignore[method-assign]
        try:
            assert len(again.indexes["technologies"].index) == 3
        finally:
            CollectionIndex._rebuild_own = original  # type: ignore[method-assign]
        assert again.indexes["technologies"].verify().ok
        leftovers = [p.name for p in directory.parent.iterdir() if ".tmp-" in p.name]
        leftovers += [p.name for p in directory.parent.iterdir() if ".old-" in p.name]
        assert not leftovers, leftovers
    finally:
        again.close()
