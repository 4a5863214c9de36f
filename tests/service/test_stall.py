"""One request cannot stall the service: the encoder runs with no lock held, and oversized input
is refused at once while searches go on (the latencies are measured in benchmarks.stall)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.main import create_app
from benchmarks.load import serve
from matcher.domain import Side
from matcher.engine import Engine
from matcher.store.repo import SqlEmbeddingCache
from tests.service.test_races import in_parallel
from tests.unit.fakes import FakeEncoder, fake_settings, need, technologies

API = "/api/v1"
SLOW = "zeppelin"  # a text with this word waits in the encoder until released


class GatedEncoder(FakeEncoder):
    """The fake encoder, holding any batch with a SLOW text until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if any(SLOW in t for t in texts):
            self.entered.set()
            assert self.release.wait(60), "never released"
        return super().encode(texts, progress=progress)


@pytest.fixture
def gated(tmp_path: Path, database_url: str) -> Iterator[tuple[Engine, GatedEncoder]]:
    encoder = GatedEncoder()
    engine = Engine(fake_settings(tmp_path / "home", database_url), encoder=encoder)
    engine.save_records("technologies", technologies())
    yield engine, encoder
    encoder.release.set()
    engine.close()


def test_the_encoder_runs_with_no_lock_held(gated: tuple[Engine, GatedEncoder]) -> None:
    engine, encoder = gated
    slow = need("N-SLOW", title=f"A {SLOW} hull inspection drone for offshore platforms")
    writer = threading.Thread(target=engine.create_record, args=(Side.needs, slow))
    writer.start()
    assert encoder.entered.wait(30), "the write never reached the encoder"
    # while that write is in the encoder: the write lock is free, other writes, searches and
    # views go on (each of these would wait for the lock if the encoder held it)
    catalog = engine.catalog
    assert catalog.lock.acquire(timeout=5)
    catalog.lock.release()
    assert catalog.index_lock.acquire(timeout=5)
    catalog.index_lock.release()
    engine.create_record(Side.needs, need("N-FAST", title="A fatigue radar for bus drivers"))
    assert engine.match_text("radar sensor chip for fatigue")
    assert "N-FAST" in {r.ref for r in catalog.view("needs").rows.values()}
    assert writer.is_alive()  # still held in the encoder
    encoder.release.set()
    writer.join(30)
    refs = {r.ref for r in catalog.view("needs").rows.values()}
    assert {"N-SLOW", "N-FAST"} <= refs
    assert len(engine.indexes["needs"].index) == 2


def test_parallel_writers_of_the_same_vectors_share_the_cache(
    gated: tuple[Engine, GatedEncoder],
) -> None:
    engine, _ = gated
    cache = SqlEmbeddingCache(engine.sessions)
    vectors = {f"h{i}": np.full(4, i, dtype=np.float32) for i in range(50)}
    out = in_parallel(lambda _: cache.put_many("parallel-model", vectors))
    assert not out.errors, out.errors
    stored = cache.get_many("parallel-model", list(vectors))
    assert set(stored) == set(vectors) and stored["h7"][0] == 7


def test_oversized_input_is_refused_at_once_while_searches_go_on(
    service_engine: Any, api_settings: Any
) -> None:
    from tests.service.test_openapi_contract import admin_token

    token = {"Authorization": f"Bearer {admin_token(service_engine)}"}
    searches: list[int] = []
    done = threading.Event()

    def search_until_done(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60, headers=token) as http:
            while not done.is_set() and len(searches) < 500:
                answer = http.post(f"{API}/search", json={"text": "solid-state battery"})
                searches.append(answer.status_code)

    with serve(create_app(service_engine, api_settings)) as server:
        searcher = threading.Thread(target=search_until_done, args=(server.url,))
        searcher.start()
        with httpx.Client(base_url=server.url, timeout=60, headers=token) as http:
            huge = http.post(
                f"{API}/technologies",
                content=b'{"title": "' + b"k" * 1_100_000 + b'"}',
                headers={"content-type": "application/json"},
            )
            codes = http.post(
                f"{API}/needs",
                json={"title": "Many codes", "description": "x" * 40, "domains": ["04"] * 50_000},
            )
            keyword = http.post(
                f"{API}/technologies", json={"title": "t", "keywords": ["k" * 900_000]}
            )
        done.set()
        searcher.join(60)
    assert huge.status_code == 413, huge.text[:300]
    assert codes.status_code == 422 and "at most" in codes.json()["detail"]
    assert keyword.status_code == 422
    assert searches and set(searches) == {200}, searches[:20]


def test_the_stall_benchmark_runs(service_engine: Any) -> None:
    from benchmarks.stall import measure, table

    report = measure(service_engine, 5, gap_s=0.05)
    assert report["alone"]["p50_ms"] > 0 and report["under_oversized_input"]["p95_ms"] > 0
    assert report["refused"]["1.1 MB body"]["statuses"] == [413]
    assert report["refused"]["50,000 domain codes"]["statuses"] == [422]
    assert "| alone |" in table(report)
