"""``matcher embed`` on a local Ray cluster: the vectors one process would give, every Ray port
on 127.0.0.1, a clean shutdown, and an import afterwards that encodes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("ray", reason="batch embedding needs Ray: pip install 'ray[data]'")

from matcher import config  # noqa: E402
from matcher.cli import app  # noqa: E402
from matcher.config import REPO_DATA_DIR  # noqa: E402
from matcher.domain import Side, TechnologyIn  # noqa: E402
from matcher.embed import Encoder, content_hash  # noqa: E402
from matcher.embed.ray_cluster import RayOptions, ray_cluster  # noqa: E402
from matcher.engine import Engine  # noqa: E402
from matcher.store import repo  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),  # Ray Data's own settings
]
runner = CliRunner()
RECORDS = 30  # demo technologies, Chinese and English


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One local cluster of 2 one-CPU workers for the module; no Ray process outlives it."""
    root = Path(tempfile.mkdtemp(prefix="tm-ray-test-"))
    try:
        with ray_cluster(RayOptions(workers=2, temp_root=root)) as ray:
            yield ray
        deadline = time.monotonic() + 30
        while descendants(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = descendants(os.getpid())
        assert not left, f"Ray processes left after shutdown: {sorted(left)}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throw-away data directory; torch MiniLM (the session's model) and USE as the spaces."""
    monkeypatch.setenv("MATCHER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MATCHER_PROGRESS", "false")
    monkeypatch.setenv("MATCHER_ENCODER_BACKEND", "torch")
    monkeypatch.setenv("MATCHER_MULTILINGUAL_MODEL", "use-multilingual-v3")
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    yield tmp_path / "home"
    config.get_settings.cache_clear()


class CountingEncoder:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.texts = 0

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts)


def test_embed_matches_one_process_and_import_encodes_nothing(
    cluster: Any, home: Path, tmp_path: Path, encoder: Encoder, use_encoder: Encoder
) -> None:
    """``matcher embed`` on 2 workers gives one process's vectors in both spaces; the import
    after it only reads the cache, and a second embed finds everything there."""
    lines = (REPO_DATA_DIR / "demo" / "technologies.jsonl").read_text("utf-8").splitlines()
    records = [json.loads(x) for x in lines[:RECORDS]]
    records.append(dict(records[0], id="T-COPY"))  # same text, another record: encoded once
    path = tmp_path / "technologies.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), "utf-8")

    started = time.monotonic()
    result = runner.invoke(app, ["embed", str(path), "--workers", "2", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert f"technologies: {RECORDS + 1} records" in result.output
    for space in ("all-MiniLM-L6-v2", "use-multilingual-v3"):
        assert f"{space}: {RECORDS} distinct texts, 0 already cached, {RECORDS} encoded" in (
            result.output
        )
    assert time.monotonic() - started < 300

    settings = make_settings(home, encoder_backend="torch")
    primary, multilingual = CountingEncoder(encoder), CountingEncoder(use_encoder)
    engine = Engine(settings, encoder=primary, multilingual_encoder=multilingual)
    try:
        texts = [repo.text_of(Side.technologies, TechnologyIn(**r)) for r in records]
        hashes = [content_hash(t) for t in texts[:RECORDS]]
        for one in (encoder, use_encoder):
            cached = engine.cache.get_many(one.name, hashes)
            got = np.stack([cached[h] for h in hashes])
            np.testing.assert_allclose(got, one.encode(texts[:RECORDS]), atol=1e-5)

        imported = engine.import_file(path, "technologies")
        assert imported.created == RECORDS + 1
        assert engine.indexes["technologies"].repair(full=True).ok  # `matcher index build`
        assert engine.indexes["technologies"].verify().ok
        assert primary.texts == 0 and multilingual.texts == 0  # assembled from the cache
    finally:
        engine.close()

    again = runner.invoke(app, ["embed", str(path)])
    assert again.exit_code == 0, again.output
    assert f"{RECORDS} already cached, 0 encoded" in again.output


def test_ray_listens_on_loopback_only(cluster: Any) -> None:
    """Every socket a Ray process listens on (GCS, raylet, agents, workers, an actor) is bound
    to 127.0.0.1."""
    if shutil.which("ss") is None:
        pytest.skip("needs `ss` (iproute2) to list listening sockets")

    @cluster.remote(num_cpus=1)
    class Ping:
        def ping(self) -> str:
            return "pong"

    actor = Ping.remote()  # type: ignore[attr-defined]
    assert cluster.get(actor.ping.remote(), timeout=60) == "pong"
    pids = descendants(os.getpid()) | {os.getpid()}
    lines = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.splitlines()
    ours = [x for x in lines if any(int(p) in pids for p in re.findall(r"pid=(\d+)", x))]
    addresses = {x.split()[3].rsplit(":", 1)[0] for x in ours}
    assert len(ours) >= 3, lines  # GCS, raylet, workers at least
    assert addresses <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, ours
    cluster.kill(actor)
