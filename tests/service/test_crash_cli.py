"""kill -9 of ``matcher import`` at its worst moments, then an ordinary restart of the service
(``--no-demo``, no repair by hand): the records it committed are all indexed, ``matcher index
verify`` is clean and no temporary index files remain.

The kills are real SIGKILLs of the real command, sent by the process to itself at a chosen
point (a driver script patches one function before running the command), so that the moment is
the same on every run: (1) in the middle of an index save, after the old version was moved
aside and before the new one took its place; (2) after the import's transaction committed and
before any index was updated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, select

from matcher.config import REPO_DATA_DIR, Settings
from matcher.store.models import TechnologyRow
from tests.service.test_crash import start, stop_server, verify
from tests.service.test_server_limits import free_port, wait_until_up

DRIVER = """
import os, signal, sys

moment = sys.argv[1]
if moment == "in-save":  # between the two renames of a save: old aside, new not yet in place
    real_replace = os.replace

    def replace(src, dst):
        if ".tmp-" in os.fspath(src):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    os.replace = replace
elif moment == "after-commit":  # the records are stored, no index knows them yet
    from matcher.catalog import Catalog

    def reindex(self, side, ids):
        os.kill(os.getpid(), signal.SIGKILL)

    Catalog.reindex = reindex
from matcher.cli import app

app(sys.argv[2:], prog_name="matcher")
"""


def matcher(home: Path, *args: str, moment: str = "none", driver: Path) -> int:
    """Run ``matcher ARGS`` in its own process; its return code (-9 when it was killed)."""
    done = subprocess.run(
        [sys.executable, str(driver), moment, *args],
        env={**os.environ, "MATCHER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, -signal.SIGKILL), done.stdout + done.stderr
    return done.returncode


def test_kill_9_of_matcher_import_then_an_ordinary_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    lines = (REPO_DATA_DIR / "demo" / "technologies.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in lines.splitlines() if line.strip()]
    batches = []
    for n in range(3):
        batch = tmp_path / f"batch{n}.jsonl"
        chosen = rows[n * 12 : (n + 1) * 12]
        batch.write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
        batches.append(batch)

    index_dir = Settings(home=home).index_dir
    assert matcher(home, "import", "technologies", str(batches[0]), driver=driver) == 0
    killed = matcher(
        home, "import", "technologies", str(batches[1]), moment="in-save", driver=driver
    )
    assert killed == -signal.SIGKILL, "the import was not killed in its index save"
    assert any(".tmp-" in p.name for p in index_dir.iterdir())  # a half-done save
    killed = matcher(
        home, "import", "technologies", str(batches[2]), moment="after-commit", driver=driver
    )
    assert killed == -signal.SIGKILL, "the import was not killed after its commit"
    store = create_engine(Settings(home=home).effective_database_url)
    with store.connect() as session:
        assert session.scalar(select(func.count()).select_from(TechnologyRow)) == 36

    # an ordinary restart: the service, no demo load, no repair by hand
    port = free_port()
    server = start(home, port, tmp_path / "server.log", demo=False)
    try:
        wait_until_up(server, f"http://127.0.0.1:{port}", tmp_path)
    finally:
        stop_server(server)
    verified = verify(home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "database 36, index 36" in verified.stdout, verified.stdout
    leftovers = [p.name for p in index_dir.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert not leftovers, leftovers
