"""Several processes over one database: each follows the change log into its own indexes.

Engines with their own data directories on one store (SQLite file or PostgreSQL) stand for
processes; the last test runs two real server processes on one PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from matcher.engine import Engine
from matcher.follow import ChangeFollower
from matcher.index.collection import CollectionIndex
from matcher.store.repo.tokens import issue_token
from tests.service.test_server_limits import free_port, wait_until_up
from tests.unit.fakes import FakeEncoder, fake_settings, technologies

RADAR = "Radar sensor chip for driver fatigue detection 1"


def refs(engine: Engine, text: str) -> set[str]:
    return {m.technology_ref or "" for m in engine.match_text(text)}


@pytest.fixture
def two(tmp_path: Path, database_url: str) -> Iterator[tuple[Engine, Engine]]:
    a = Engine(fake_settings(tmp_path / "a", database_url), encoder=FakeEncoder())
    a.save_records("technologies", technologies())
    b = Engine(fake_settings(tmp_path / "b", database_url), encoder=FakeEncoder())
    yield a, b
    a.close()
    b.close()


def test_a_write_in_one_process_reaches_another(two: tuple[Engine, Engine]) -> None:
    a, b = two
    follow_a = ChangeFollower(a.catalog, a.settings.index_dir)
    follow_b = ChangeFollower(b.catalog, b.settings.index_dir)
    assert refs(b, RADAR) >= {"T-1"}
    hull = technologies()[0].model_copy(
        update={"id": "T-HULL", "title": "Barnacle-free hull coating for harbour tugs"}
    )
    a.save_records("technologies", [hull])
    assert "T-HULL" not in refs(b, "barnacle hull coating tugs")
    assert follow_b.catch_up() == 1
    assert "T-HULL" in refs(b, "barnacle hull coating tugs")
    assert follow_a.catch_up() == 0  # its own write was applied when it was made
    a.archive("technologies", "T-HULL")
    follow_b.catch_up()
    assert "T-HULL" not in refs(b, "barnacle hull coating tugs")
    assert len(b.indexes["technologies"].index) == len(a.indexes["technologies"].index)


def test_a_restarted_process_catches_up_without_a_rebuild(
    tmp_path: Path, two: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    ChangeFollower(b.catalog, b.settings.index_dir).catch_up()
    b.close()  # b stops; a goes on writing
    for n in (1, 2):
        fresh = technologies()[1].model_copy(
            update={"id": f"T-NEW{n}", "title": f"Graphene anticorrosion coating {n}"}
        )
        a.save_records("technologies", [fresh])

    def no_rebuild(self: CollectionIndex) -> int:
        raise AssertionError("a restart rebuilt an index")

    monkeypatch.setattr(CollectionIndex, "rebuild", no_rebuild)
    again = Engine(fake_settings(tmp_path / "b", a.settings.database_url), encoder=FakeEncoder())
    try:
        follower = ChangeFollower(again.catalog, again.settings.index_dir)
        assert follower.catch_up() == 2
        assert {"T-NEW1", "T-NEW2"} <= refs(again, "graphene anticorrosion coating")
        assert again.indexes["technologies"].verify().ok
    finally:
        again.close()


def test_the_saved_sequence_never_runs_ahead_of_the_indexes(
    tmp_path: Path, two: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that runs between a write's commit and its own index update (then a kill):
    the sequence saved must not pass that write, so the next start applies it."""
    a, _ = two
    follower = ChangeFollower(a.catalog, a.settings.index_dir)
    own_update = a.catalog.reindex
    killed: list[bool] = []

    def killed_before_indexing(side, ids):  # noqa: ANN001, ANN202 - the method's own types
        monkeypatch.setattr(a.catalog, "reindex", own_update)
        follower.catch_up()  # the follower's pass sees the committed write first ...
        follower.checkpoint()  # ... and saves what it holds
        killed.append(True)
        raise SystemExit("killed between the commit and the index update")

    monkeypatch.setattr(a.catalog, "reindex", killed_before_indexing)
    hull = technologies()[0].model_copy(
        update={"id": "T-HULL", "title": "Barnacle-free hull coating for harbour tugs"}
    )
    with pytest.raises(SystemExit):
        a.save_records("technologies", [hull])
    assert killed
    a.close()
    again = Engine(fake_settings(tmp_path / "a", a.settings.database_url), encoder=FakeEncoder())
    try:
        restarted = ChangeFollower(again.catalog, again.settings.index_dir)
        restarted.catch_up()
        restarted.checkpoint()
        assert "T-HULL" in refs(again, "barnacle hull coating tugs")
        assert again.indexes["technologies"].verify().ok
    finally:
        again.close()


def hold_lock(directory: Path) -> subprocess.Popen[str]:
    """Another process holding a data directory's writer lock, until killed."""
    code = (
        "import sys, time; from matcher.index.owner import IndexDirLock; "
        "assert IndexDirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_one_writer_of_index_files_the_others_follow_in_memory(
    tmp_path: Path, database_url: str
) -> None:
    """A process that finds another holding the data directory's lock never writes its index
    files (its indexes follow the log in memory), and takes over once the writer is gone."""
    settings = fake_settings(tmp_path / "shared", database_url)
    holder = hold_lock(settings.index_dir)
    try:
        writer = Engine(settings, encoder=FakeEncoder())
        reader = Engine(fake_settings(tmp_path / "other", database_url), encoder=FakeEncoder())
        assert not writer.files.held and reader.files.held
        follower = ChangeFollower(writer.catalog, settings.index_dir, files=writer.files)
        reader.save_records("technologies", technologies())  # another process writes
        assert follower.catch_up() == 3
        assert refs(writer, RADAR) >= {"T-1"}  # searchable here, from memory
        follower.checkpoint()
        directory = writer.indexes["technologies"].directory
        assert not directory.exists(), "a process without the lock wrote index files"
        assert not (settings.index_dir / "changes.seq").exists()
        holder.kill()
        holder.wait(30)
        follower.checkpoint()  # the writer has gone: this process takes over
        assert writer.files.held and directory.exists()
        assert writer.indexes["technologies"].verify().ok
        assert (settings.index_dir / "changes.seq").read_text().strip() == str(follower.applied)
        writer.close()
        reader.close()
    finally:
        holder.kill()


@pytest.mark.postgres
def test_two_server_processes_see_each_others_writes(tmp_path: Path, pg_url: str) -> None:
    servers = []
    logs = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = (tmp_path / f"{name}.log").open("wb")
            logs.append(log)
            env = {
                **os.environ,
                "MATCHER_HOME": str(tmp_path / name),
                "MATCHER_DATABASE_URL": pg_url,
                "MATCHER_API_FOLLOW_INTERVAL_S": "0.5",
                "MATCHER_API_IN_PROCESS_WORKER": "false",
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "api", "--no-demo", "--host", "127.0.0.1"]
                + ["--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            servers.append((process, f"http://127.0.0.1:{port}"))
        for process, url in servers:
            wait_until_up(process, url, tmp_path)
        settings = fake_settings(tmp_path / "tokens", pg_url)
        issuer = Engine(settings, encoder=FakeEncoder())
        with issuer.sessions() as session:
            token = issue_token(session, role="admin", label="follow test")
            session.commit()
        issuer.close()
        auth = {"Authorization": f"Bearer {token}"}
        (_, url_a), (_, url_b) = servers
        body = technologies()[0].model_dump(mode="json")
        body.update(id="T-FOLLOW", title="Acoustic leak detector for district heating pipes")
        created = httpx.post(f"{url_a}/api/v1/technologies", json=body, headers=auth, timeout=60)
        assert created.status_code == 201, created.text
        written = time.monotonic()
        query = {"text": "acoustic leak detector for heating pipes", "top": 5}
        while True:
            found = httpx.post(f"{url_b}/api/v1/search", json=query, headers=auth, timeout=60)
            assert found.status_code == 200, found.text
            if any(m.get("technology_ref") == "T-FOLLOW" for m in found.json()["items"]):
                break
            assert time.monotonic() - written < 10, "B never saw A's write"
            time.sleep(0.1)
        seen_after = time.monotonic() - written
        assert seen_after < 2.0, f"B saw A's write after {seen_after:.2f} s"
    finally:
        for process, _ in servers:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
