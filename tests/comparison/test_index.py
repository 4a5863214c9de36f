"""Tests for matcher.index: backends vs exact search, upsert/delete, persistence, factory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import matcher.index.persist as persist
from matcher.index import (
    BACKENDS,
    FlatIndex,
    HNSWIndex,
    IndexCorruptError,
    IndexMismatchError,
    IVFIndex,
    VectorIndex,
    create_index,
    load_index,
    read_meta,
    save_index,
)
from matcher.index.base import BaseVectorIndex

DIM = 64
MODEL = "test-model"


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Return n seeded random L2-normalised float32 vectors."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Return exact top-k ids by inner product using numpy."""
    return ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]]


def recall(got: np.ndarray, want: np.ndarray) -> float:
    """Return mean recall of got vs want rows."""
    hits = sum(len(set(g.tolist()) & set(w.tolist())) for g, w in zip(got, want, strict=True))
    return hits / want.size


def make(kind: str, dim: int = DIM) -> BaseVectorIndex:
    """Create a backend tuned for near-exact recall."""
    params = {"hnsw": {"ef_search": 256}, "ivf": {"nprobe": 1_000}}.get(kind, {})
    return create_index(kind, dim, params=params)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (ids, vectors, queries) shared by the tests."""
    x = unit(2_000)
    ids = np.arange(2_000, dtype=np.int64) * 7 + 3  # non-contiguous ids
    return ids, x, unit(50, seed=1)


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def kind(request: pytest.FixtureRequest) -> str:
    """Parametrise over every backend kind."""
    return str(request.param)


# ----- search quality -----------------------------------------------------------------


def test_flat_is_exact(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Flat returns exactly the numpy top-k, with matching scores."""
    ids, x, q = data
    idx = FlatIndex(DIM)
    idx.add(ids, x)
    scores, got = idx.search(q, 10)
    np.testing.assert_array_equal(got, exact(ids, x, q, 10))
    np.testing.assert_allclose(scores, np.sort(q @ x.T, axis=1)[:, ::-1][:, :10], atol=1e-5)


@pytest.mark.parametrize("k", ["hnsw", "ivf"])
def test_approximate_recall(k: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """HNSW and IVF reach recall@10 >= 0.99 with generous ef/nprobe."""
    ids, x, q = data
    idx = make(k)
    idx.add(ids, x)
    scores, got = idx.search(q, 10)
    assert recall(got, exact(ids, x, q, 10)) >= 0.99
    assert scores.dtype == np.float32 and got.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # descending


def test_contract(kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Every backend satisfies the protocol, pads short results and exposes stored vectors."""
    ids, x, _ = data
    idx = make(kind)
    assert isinstance(idx, VectorIndex) and idx.kind == kind and idx.metric == "ip"
    s, i = idx.search(x[:2], 3)  # empty index
    assert (i == -1).all() and np.isneginf(s).all()
    idx.add(ids[:5], x[:5])
    s, i = idx.search(x[:1], 8)
    assert i.shape == (1, 8) and i[0, 0] == ids[0] and (i[0, 5:] == -1).all()
    assert np.isneginf(s[0, 5:]).all() and np.isfinite(s[0, :5]).all()
    assert len(idx) == 5 and int(ids[3]) in idx and 999_999 not in idx
    np.testing.assert_array_equal(idx.ids(), np.sort(ids[:5]))
    np.testing.assert_array_equal(idx.vector(int(ids[2])), x[2])
    with pytest.raises(KeyError):
        idx.vector(999_999)
    # Several stored vectors against a query at once; an unknown id gives NaN, not an error.
    sims = idx.similarities([int(ids[4]), 999_999, int(ids[0])], x[1])
    np.testing.assert_allclose(sims[[0, 2]], [x[4] @ x[1], x[0] @ x[1]], rtol=1e-6)
    assert np.isnan(sims[1]) and idx.similarities([], x[1]).shape == (0,)
    with pytest.raises(IndexMismatchError):
        idx.search(unit(1, dim=DIM + 1), 1)
    with pytest.raises(IndexMismatchError):
        idx.add(np.array([1]), unit(1, dim=DIM + 1))
    with pytest.raises(ValueError):
        idx.add(np.array([-1]), x[:1])
    with pytest.raises(ValueError):
        idx.search(x[:1], 0)


# ----- mutation -----------------------------------------------------------------------


def test_upsert_and_delete(kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Upsert replaces a vector in place; deleted ids never come back."""
    ids, x, q = data
    idx = make(kind)
    idx.add(ids[:500], x[:500])
    target = int(ids[10])
    # Move `target` onto the query: it must become the top hit with score ~1.
    idx.add(np.array([target]), q[:1])
    assert len(idx) == 500
    np.testing.assert_array_equal(idx.vector(target), q[0])
    s, i = idx.search(q[:1], 5)
    assert i[0, 0] == target and s[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert list(i[0]).count(target) == 1

    gone = ids[:200:2]
    assert idx.remove(np.concatenate([gone, [123_456_789]])) == gone.size
    assert idx.remove(gone) == 0
    assert len(idx) == 500 - gone.size and int(gone[0]) not in idx
    _, got = idx.search(np.concatenate([q, x[:200]]), 20)
    assert not np.isin(got, gone).any()
    live_ids = np.setdiff1d(ids[:500], gone)
    live_x = np.stack([idx.vector(int(i)) for i in live_ids])
    want = exact(live_ids, live_x, q, 10)
    assert recall(idx.search(q, 10)[1], want) >= 0.99


def test_duplicate_ids_in_batch_keep_last(kind: str) -> None:
    """A batch with repeated ids behaves like sequential upserts."""
    x = unit(3)
    idx = make(kind)
    idx.add(np.array([5, 6, 5]), x)
    assert len(idx) == 2
    np.testing.assert_array_equal(idx.vector(5), x[2])


def test_hnsw_tombstone_rebuild(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """HNSW compacts its graph once tombstones pass the fraction; deletes stay deleted."""
    ids, x, q = data
    idx = HNSWIndex(DIM, ef_search=256, rebuild_fraction=0.2)
    idx.add(ids[:1000], x[:1000])
    idx.remove(ids[:150])  # 15%: tombstones only
    assert idx.tombstones == 150
    assert not np.isin(idx.search(q, 50)[1], ids[:150]).any()
    idx.remove(ids[150:300])  # 30%: triggers a rebuild
    assert idx.tombstones == 0 and len(idx) == 700
    _, got = idx.search(np.concatenate([q, x[:300]]), 50)
    assert not np.isin(got, ids[:300]).any()
    assert recall(idx.search(q, 10)[1], exact(ids[300:1000], x[300:1000], q, 10)) >= 0.99
    idx.add(ids[300:600], x[300:600][::-1].copy())  # upserts also leave tombstones
    assert idx.tombstones == 0  # 300/1000 > 0.2 -> rebuilt again
    np.testing.assert_array_equal(idx.vector(int(ids[300])), x[599])


def test_ivf_retrains_on_growth() -> None:
    """IVF trains lazily and retrains after the data grows x4."""
    x = unit(1_600)
    idx = IVFIndex(DIM, nprobe=1_000)
    idx.add(np.arange(100), x[:100])
    assert idx.trained_on == 100 and idx.trained_nlist >= 1
    idx.add(np.arange(100, 400), x[100:400])
    assert idx.trained_on == 100  # 400 is not > 4 * 100
    idx.add(np.arange(400, 1_600), x[400:])
    assert idx.trained_on == 1_600 and len(idx) == 1_600
    q = unit(20, seed=3)
    assert recall(idx.search(q, 10)[1], exact(np.arange(1_600), x, q, 10)) >= 0.99


# ----- persistence --------------------------------------------------------------------


def test_save_load_roundtrip(
    kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """A reloaded index answers identically and carries the same metadata."""
    ids, x, q = data
    idx = make(kind)
    idx.add(ids[:800], x[:800])
    idx.remove(ids[:50])  # HNSW keeps these as tombstones across the save
    meta = save_index(idx, tmp_path / "idx", model=MODEL, extra={"corpus": "demo"})
    loaded, meta2 = load_index(tmp_path / "idx", expected_model=MODEL, expected_dim=DIM)
    assert meta2 == meta == read_meta(tmp_path / "idx")
    assert (meta.kind, meta.count, meta.dim, meta.model) == (kind, 750, DIM, MODEL)
    assert meta.extra == {"corpus": "demo"} and meta.params == idx.params
    assert type(loaded) is type(idx) and loaded.params == idx.params
    np.testing.assert_array_equal(loaded.ids(), idx.ids())
    for a, b in zip(idx.search(q, 10), loaded.search(q, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    on_disk = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert {"checksum", "ids_checksum", "built_at", "faiss_version", "numpy_version"} <= set(
        on_disk
    )
    loaded.add(ids[:50], x[:50])  # a loaded index stays mutable
    assert len(loaded) == 800


def test_read_meta_absent(tmp_path: Path) -> None:
    """read_meta returns None and load_index raises when nothing was saved."""
    assert read_meta(tmp_path / "nope") is None
    with pytest.raises(IndexCorruptError, match="matcher index build"):
        load_index(tmp_path / "nope")


@pytest.mark.parametrize("victim", ["vectors.npy", "ids.npy", "index.faiss", "meta.json"])
def test_corruption_detected(
    victim: str, data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """Flipped bytes or a missing file raise IndexCorruptError."""
    ids, x, _ = data
    idx = make("hnsw")
    idx.add(ids[:200], x[:200])
    save_index(idx, tmp_path / "idx", model=MODEL)
    path = tmp_path / "idx" / victim
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match="matcher index build"):
        load_index(tmp_path / "idx")
    if victim != "meta.json":
        path.unlink()
        with pytest.raises(IndexCorruptError, match="missing"):
            load_index(tmp_path / "idx")


def test_count_mismatch_detected(tmp_path: Path) -> None:
    """A meta.json whose count disagrees with the data is corrupt."""
    idx = FlatIndex(DIM)
    idx.add(np.arange(10), unit(10))
    save_index(idx, tmp_path / "idx", model=MODEL)
    meta_path = tmp_path / "idx" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["count"] = 11
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexCorruptError):
        load_index(tmp_path / "idx")


def test_mismatch_detected(tmp_path: Path) -> None:
    """Wrong expected model or dimension raise IndexMismatchError."""
    idx = FlatIndex(DIM)
    idx.add(np.arange(10), unit(10))
    save_index(idx, tmp_path / "idx", model=MODEL)
    with pytest.raises(IndexMismatchError, match="matcher index build"):
        load_index(tmp_path / "idx", expected_model="other-model")
    with pytest.raises(IndexMismatchError, match="dimension"):
        load_index(tmp_path / "idx", expected_dim=DIM * 2)


def test_save_is_atomic(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A save that fails midway (writing or swapping) leaves the previous index loadable."""
    ids, x, q = data
    target = tmp_path / "idx"
    old = make("hnsw")
    old.add(ids[:300], x[:300])
    save_index(old, target, model=MODEL)
    new = make("hnsw")
    new.add(ids[300:600], x[300:600])

    calls = {"n": 0}
    real_write = persist._write_durably

    def failing_write(path: Path, payload: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        real_write(path, payload)

    monkeypatch.setattr(persist, "_write_durably", failing_write)
    with pytest.raises(OSError, match="simulated"):
        save_index(new, target, model=MODEL)
    monkeypatch.undo()
    _check_old_intact(target, old, q)

    real_replace = persist.os.replace

    def failing_replace(src: object, dst: object) -> None:
        if Path(str(src)).name.startswith(".idx.tmp-"):
            raise OSError("rename failed (simulated)")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(persist.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        save_index(new, target, model=MODEL)
    monkeypatch.undo()
    _check_old_intact(target, old, q)

    save_index(new, target, model=MODEL)  # and a normal save still replaces it
    assert np.array_equal(load_index(target)[0].ids(), np.sort(ids[300:600]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def _check_old_intact(target: Path, old: BaseVectorIndex, q: np.ndarray) -> None:
    """Assert the directory still holds `old` and no temp/backup dirs linger."""
    loaded, meta = load_index(target, expected_model=MODEL)
    assert meta.count == len(old)
    np.testing.assert_array_equal(loaded.search(q, 5)[1], old.search(q, 5)[1])
    assert sorted(p.name for p in target.parent.iterdir()) == ["idx"]


def test_interrupted_swap_recovers(tmp_path: Path) -> None:
    """If a crash left only the moved-aside old version, it is still loadable and restored."""
    idx = FlatIndex(DIM)
    idx.add(np.arange(10), unit(10))
    save_index(idx, tmp_path / "idx", model=MODEL)
    (tmp_path / "idx").rename(tmp_path / ".idx.old-1")  # crash between the two renames
    assert load_index(tmp_path / "idx")[1].count == 10
    (tmp_path / ".idx.old-0").mkdir()  # crash after the swap, before deleting the old copy
    save_index(idx, tmp_path / "idx", model=MODEL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


# ----- factory ------------------------------------------------------------------------


def test_create_index_auto_and_errors() -> None:
    """auto picks flat below the threshold, hnsw at/above it; bad input raises ValueError."""
    assert isinstance(create_index("auto", DIM, n_hint=19_999), FlatIndex)
    assert isinstance(create_index("auto", DIM, n_hint=20_000), HNSWIndex)
    assert isinstance(create_index("auto", DIM, n_hint=50, auto_threshold=10), HNSWIndex)
    hnsw_opts = {"auto_threshold": 100, "m": 16, "ef_search": 64}
    flat = create_index("auto", DIM, n_hint=99, params=hnsw_opts)
    assert isinstance(flat, FlatIndex)
    hnsw = create_index("auto", DIM, n_hint=100, params=hnsw_opts)
    assert isinstance(hnsw, HNSWIndex) and hnsw.params["m"] == 16
    assert isinstance(create_index("ivf", DIM, params={"nprobe": 4}), IVFIndex)
    with pytest.raises(ValueError, match="flat, hnsw, ivf, ivfpq, auto"):
        create_index("annoy", DIM)
    with pytest.raises(ValueError, match="valid"):
        create_index("hnsw", DIM, params={"nprobe": 4})
