"""The compressed index (kind "ivfpq") against exact search: recall, RAM, mutation, persistence.

Vectors are synthetic: ``benchmarks.index_pq.clustered_vectors``, a Gaussian mixture calibrated
on real MiniLM award abstracts (its docstring compares the two). Real vectors of a few thousand
texts would cost minutes of encoding; the benchmark measures those.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from benchmarks.index_pq import clustered_vectors
from matcher.embed import Encoder
from matcher.engine import Engine
from matcher.index import (
    HNSWIndex,
    IndexCorruptError,
    IVFPQIndex,
    auto_kind,
    create_index,
    load_index,
    outgrown,
    pq,
    save_index,
)
from matcher.index.pq import VECTOR_FILE
from tests.catalogue import TECHNOLOGIES
from tests.conftest import make_settings

DIM = 384
N = 6_000


def exact_top(ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids by inner product (numpy)."""
    return ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]]


def recall(got: np.ndarray, want: np.ndarray) -> float:
    """Mean share of the exact top-k found."""
    hits = sum(len(set(g.tolist()) & set(w.tolist())) for g, w in zip(got, want, strict=True))
    return hits / want.size


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One FAISS thread, as the engine searches (faiss_threads); OpenMP on busy shared cores
    slows training by an order of magnitude."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors, held-out queries) from one clustered draw."""
    x = clustered_vectors(N + 200, DIM, seed=13)
    ids = np.arange(N, dtype=np.int64) * 5 + 11  # not contiguous, not starting at 0
    return ids, x[200:], x[:200]


@pytest.fixture(scope="module")
def trained(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> IVFPQIndex:
    """An index trained on a sample (train_min lowered so that a test-sized set trains)."""
    ids, x, _ = data
    index = IVFPQIndex(DIM, train_min=2_500, train_sample=2_500)
    index.add(ids, x)
    return index


def test_recall_at_10_against_exact(
    trained: IVFPQIndex, data: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """Codes pick 100 candidates, stored vectors re-rank them: recall@10 >= 0.95."""
    ids, x, q = data
    assert trained.trained_on == N and trained.code_size == 48 and trained.nprobe == 128
    assert trained.probe_fraction == pytest.approx(1 / 12)
    want = exact_top(ids, x, q, 10)
    scores, got = trained.search(q, 10)
    assert recall(got, want) >= 0.95
    # Scores are exact inner products of the stored vectors, best first.
    rows = np.searchsorted(ids, got)
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", x[rows], q), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    trained.rerank = 10  # the codes alone: clearly worse, so the re-ranking is doing the work
    try:
        assert recall(trained.search(q, 10)[1], want) < 0.9
    finally:
        trained.rerank = 100


def test_ram_per_vector(trained: IVFPQIndex) -> None:
    """<= 100 bytes a vector in RAM at 1M: code + list id + row map, plus codebooks / 1M."""
    assert trained._pq is not None
    ivf = faiss.extract_index_ivf(trained._pq)
    per_vector = ivf.code_size + 8 + 16  # code, its id in the list, sorted id + row
    assert per_vector == 72
    serialised = int(faiss.serialize_index(trained._pq).size)
    fixed = serialised - len(trained) * (ivf.code_size + 8)  # centroids, codebooks, headers
    assert trained.ram_bytes == serialised + 16 * len(trained)
    # Centroids grow with sqrt(n) (4*sqrt(n) lists); at 1M they are 4,000 x 384 floats.
    at_1m = per_vector + (fixed - 4 * DIM * ivf.nlist + 4 * DIM * 4_000) / 1_000_000
    assert at_1m <= 100
    # No float32 copy of the vectors and no per-id Python object anywhere on the index.
    for value in [*vars(trained).values(), *vars(trained._stored).values()]:
        assert not (isinstance(value, np.ndarray) and value.dtype == np.float32 and value.size)
        assert not (isinstance(value, dict | list) and len(value) >= len(trained))
    assert trained._stored.ids.dtype == trained._stored.rows.dtype == np.int64


def test_add_remove_save_load_round_trip(tmp_path: Path) -> None:
    """Upserts replace, removals stay removed, a reload answers the same and stays mutable."""
    x, q = clustered_vectors(N, 64, seed=5), clustered_vectors(20, 64, seed=6)
    ids = np.arange(N, dtype=np.int64) * 5 + 11
    index = IVFPQIndex(64, code_size=16, train_min=2_000, train_sample=2_000)
    index.add(ids[:3_000], x[:3_000])
    index.add(ids[3_000:], x[3_000:])  # incremental: encoded with the first training
    assert index.trained_on == 3_000 and len(index) == N
    target = int(ids[42])
    index.add(np.array([target]), q[:1])  # move it onto the first query
    scores, got = index.search(q[:1], 5)
    assert got[0, 0] == target and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(index.vector(target), q[0])
    gone = ids[100:400]
    assert index.remove(np.concatenate([gone, [7]])) == gone.size and index.remove(gone) == 0
    assert int(gone[0]) not in index and len(index) == N - gone.size
    assert not np.isin(index.search(np.concatenate([q, x[100:400]]), 20)[1], gone).any()
    assert index.garbage_rows == 1 + gone.size

    meta = save_index(index, tmp_path / "idx", model="m")
    saved = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert VECTOR_FILE in saved and "vectors.npy" not in saved
    assert (meta.kind, meta.count) == ("ivfpq", len(index))
    loaded, _ = load_index(tmp_path / "idx", expected_model="m", expected_dim=64)
    assert isinstance(loaded, IVFPQIndex) and loaded.trained_on == 3_000
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for a, b in zip(index.search(q, 10), loaded.search(q, 10), strict=True):
        np.testing.assert_array_equal(a, b)

    loaded.add(gone, x[100:400])  # appended behind the saved rows
    loaded.remove(ids[:10])
    save_index(loaded, tmp_path / "idx", model="m")  # links the same file again
    again, _ = load_index(tmp_path / "idx")
    assert len(again) == N - 10 and int(gone[0]) in again and int(ids[0]) not in again
    np.testing.assert_array_equal(again.vector(int(gone[5])), x[105])
    # The first snapshot's index, still open, appended nothing that disturbs the second.
    index.add(np.array([1]), q[1:2])
    np.testing.assert_array_equal(load_index(tmp_path / "idx")[0].ids(), again.ids())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_damaged_vector_file_is_detected(tmp_path: Path) -> None:
    """A flipped byte or a cut in the saved rows is a corrupt index (rebuild hint)."""
    index = IVFPQIndex(64, code_size=16, train_min=256)
    index.add(np.arange(500), clustered_vectors(500, 64, seed=7))
    save_index(index, tmp_path / "idx", model="m")
    path = tmp_path / "idx" / VECTOR_FILE
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.unlink()  # the live index still holds the file: write a damaged copy instead
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match="matcher index build"):
        load_index(tmp_path / "idx")
    path.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(IndexCorruptError, match="matcher index build"):
        load_index(tmp_path / "idx")
    path.unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        load_index(tmp_path / "idx")


def test_trains_when_big_enough_and_retrains_after_x4_growth() -> None:
    """Exact until train_min, trained then, retrained once the index grew x4."""
    x = clustered_vectors(2_500, 64, seed=3)
    ids = np.arange(2_500, dtype=np.int64)
    index = IVFPQIndex(64, code_size=16, train_min=300)
    index.add(ids[:250], x[:250])
    assert index.trained_on == 0  # below train_min: exact search over the file
    want = exact_top(ids[:250], x[:250], x[:5], 10)
    np.testing.assert_array_equal(index.search(x[:5], 10)[1], want)
    index.add(ids[250:600], x[250:600])
    assert index.trained_on == 600
    index.add(ids[600:2_400], x[600:2_400])
    assert index.trained_on == 600  # 2,400 is not > 4 x 600
    index.add(ids[2_400:], x[2_400:])
    assert index.trained_on == 2_500
    q = clustered_vectors(50, 64, seed=4)
    assert recall(index.search(q, 10)[1], exact_top(ids, x, q, 10)) >= 0.95


def test_rewrites_compact_the_vector_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaced vectors leave garbage rows; past half the file they are copied away."""
    monkeypatch.setattr(pq, "_COMPACT_MIN", 1_000)
    ids = np.arange(1_000, dtype=np.int64)
    index = IVFPQIndex(64, code_size=16, train_min=500)
    rng = np.random.default_rng(0)
    for _ in range(4):  # rewrite every vector: 1,000 garbage rows each time
        fresh = rng.standard_normal((1_000, 64)).astype(np.float32)
        fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
        index.add(ids, fresh)
    assert len(index) == 1_000 and index.garbage_rows <= 2_000
    np.testing.assert_array_equal(index.vector(77), fresh[77])
    np.testing.assert_array_equal(index.search(fresh[:20], 1)[1][:, 0], ids[:20])


def test_auto_picks_ivfpq_above_the_pq_threshold() -> None:
    """auto: flat, then HNSW, then IVF-PQ; an index only ever moves up that list."""
    assert auto_kind(10, auto_threshold=100, pq_threshold=1_000) == "flat"
    assert auto_kind(500, auto_threshold=100, pq_threshold=1_000) == "hnsw"
    assert auto_kind(1_000, auto_threshold=100, pq_threshold=1_000) == "ivfpq"
    assert isinstance(create_index("auto", DIM, n_hint=1_000, pq_threshold=1_000), IVFPQIndex)
    hnsw = create_index("auto", DIM, n_hint=999, auto_threshold=100, pq_threshold=1_000)
    assert isinstance(hnsw, HNSWIndex)
    assert outgrown("hnsw", 1_000, auto_threshold=100, pq_threshold=1_000) == "ivfpq"
    assert outgrown("ivfpq", 10, auto_threshold=100, pq_threshold=1_000) is None
    # One settings dict serves every kind: the keys IVF-PQ does not take are dropped.
    settings_params = {"m": 32, "ef_search": 64, "nprobe": 32}
    index = create_index("ivfpq", DIM, params=settings_params, ignore_unknown=True)
    assert isinstance(index, IVFPQIndex) and index.nprobe == 32 and index.code_size == 48
    with pytest.raises(ValueError, match="valid"):
        create_index("ivfpq", DIM, params={"ef_search": 64})


def test_collection_grows_into_ivfpq_and_verifies(tmp_path: Path, encoder: Encoder) -> None:
    """An `auto` collection becomes IVF-PQ past the threshold; verify and a restart agree."""
    settings = make_settings(
        tmp_path / "home",
        index_auto_threshold=2,
        index_pq_threshold=5,
        multilingual_model="off",
    )
    engine = Engine(settings, encoder=encoder)
    path = tmp_path / "t.jsonl"
    for part, kind in ((TECHNOLOGIES[:3], "hnsw"), (TECHNOLOGIES[3:], "ivfpq")):
        path.write_text("\n".join(json.dumps(r) for r in part), encoding="utf-8")
        engine.import_file(path, "technologies")
        assert engine.indexes["technologies"].index.kind == kind
    assert engine.indexes["technologies"].verify().ok
    top = engine.match_text("paint that stops offshore steel from rusting", top=1)
    assert top[0].technology_ref == "T-2"
    engine.close()
    again = Engine(settings, encoder=encoder)
    index = again.indexes["technologies"].index
    assert index.kind == "ivfpq" and len(index) == len(TECHNOLOGIES)
    assert again.indexes["technologies"].verify().ok
    again.close()
