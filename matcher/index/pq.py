"""Compressed index for large catalogues: IVF-PQ codes in RAM, exact re-ranking from disk."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from matcher.index.base import BaseVectorIndex
from matcher.index.ivf import auto_nlist
from matcher.index.vectorfile import StoredVectors, VectorFile

VECTOR_FILE = "vectors.f32"
_ADD_CHUNK = 65_536  # vectors read back from disk at a time when (re)building
_SEARCH_CHUNK = 64  # queries re-ranked at a time (bounds the gathered candidate vectors)
_COMPACT_MIN = 65_536  # garbage rows tolerated whatever the size (then: up to one per live row)


def auto_code_size(dim: int) -> int:
    """Bytes of code for dim: the largest divisor of dim <= dim/8 and <= 64 (48 at 384)."""
    for m in range(min(64, max(1, dim // 8)), 0, -1):
        if dim % m == 0:
            return m
    return 1


class IVFPQIndex(BaseVectorIndex):
    """(O)PQ codes on inverted lists in RAM; the float32 vectors stay in a file.

    A search takes the ``rerank`` best candidates by their compressed codes, reads those
    candidates' vectors back from the file and orders them by the exact inner product. RAM per
    vector: the code (code_size bytes), its id in the inverted list (8) and the id -> file row map
    (16, sorted arrays searched with np.searchsorted); no Python object per vector. Below
    ``train_min`` vectors nothing is trained and the search is exact over the file. A search
    probes ``nprobe`` lists, or ``probe_fraction`` of them when more: recall depends on the share
    of the data scanned, and the lists grow with the catalogue.

    Searches run beside one writer: the FAISS index is searched and changed under a lock (FAISS
    releases the GIL), the id map is swapped whole, and rows are never rewritten in the file.
    """

    kind: ClassVar[str] = "ivfpq"
    vectors_on_disk: ClassVar[bool] = True

    def __init__(
        self,
        dim: int,
        *,
        nlist: int | None = None,
        nprobe: int = 128,
        probe_fraction: float = 1 / 12,
        code_size: int | None = None,
        opq: bool = False,
        rerank: int = 100,
        train_min: int = 10_000,
        train_sample: int = 100_000,
        retrain_growth: float = 4.0,
    ) -> None:
        super().__init__(dim)
        if code_size is not None and (code_size < 1 or self.dim % code_size):
            raise ValueError(f"code_size must divide the dimension {self.dim}, got {code_size}")
        if (nlist is not None and nlist < 1) or nprobe < 1 or rerank < 1:
            raise ValueError(
                f"need nlist >= 1, nprobe >= 1 and rerank >= 1; got {nlist}, {nprobe}, {rerank}"
            )
        if not 0.0 <= probe_fraction <= 1.0:
            raise ValueError(f"probe_fraction must be in [0, 1], got {probe_fraction}")
        if retrain_growth <= 1.0 or min(train_min, train_sample) < 256:
            raise ValueError(
                "need retrain_growth > 1, train_min >= 256 and train_sample >= 256; got "
                f"{retrain_growth}, {train_min}, {train_sample}"
            )
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = int(nprobe)
        self.probe_fraction = float(probe_fraction)
        self.code_size = auto_code_size(self.dim) if code_size is None else int(code_size)
        self.opq = bool(opq)
        self.rerank = int(rerank)
        self.train_min = int(train_min)
        self.train_sample = int(train_sample)
        self.retrain_growth = float(retrain_growth)
        empty = np.empty(0, dtype=np.int64)
        self._stored = StoredVectors(VectorFile.scratch(self.dim), empty, empty)
        self._pq: faiss.Index | None = None
        self._pq_lock = threading.Lock()
        self._trained_on = 0

    @property
    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable construction parameters."""
        return {
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "probe_fraction": self.probe_fraction,
            "code_size": self.code_size,
            "opq": self.opq,
            "rerank": self.rerank,
            "train_min": self.train_min,
            "train_sample": self.train_sample,
            "retrain_growth": self.retrain_growth,
        }

    @property
    def trained_on(self) -> int:
        """Return how many vectors the current codebooks were trained on (0: exact search)."""
        return self._trained_on

    @property
    def trained_nlist(self) -> int:
        """Return the number of inverted lists of the current training (0 when untrained)."""
        pq = self._pq
        return 0 if pq is None else int(faiss.extract_index_ivf(pq).nlist)

    @property
    def ram_bytes(self) -> int:
        """Bytes this index keeps in RAM: codes, list ids, codebooks and the id -> row map."""
        with self._pq_lock:
            codes = 0 if self._pq is None else int(faiss.serialize_index(self._pq).size)
        return codes + int(self._stored.ids.nbytes + self._stored.rows.nbytes)

    @property
    def garbage_rows(self) -> int:
        """Rows of the vector file no live id points at (replaced or removed vectors)."""
        return self._stored.file.rows - self._n

    # ----- public API -------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors, replacing any already stored under the same id."""
        ids_arr, vecs = self._check_batch(ids, vectors)
        if ids_arr.size == 0:
            return
        if self.garbage_rows > max(self._n, _COMPACT_MIN):
            self._compact()
        old = self._stored
        rows = old.file.append(vecs)
        pos = old.positions(ids_arr)
        known = pos >= 0
        fresh = ~known
        order = np.argsort(ids_arr[fresh], kind="stable")
        at = np.searchsorted(old.ids, ids_arr[fresh][order])
        new_rows = old.rows.copy()
        new_rows[pos[known]] = rows[known]
        self._publish(
            StoredVectors(
                old.file,
                np.insert(old.ids, at, ids_arr[fresh][order]),
                np.insert(new_rows, at, rows[fresh][order]),
            )
        )
        self._backend_add(ids_arr, vecs, ids_arr[known])

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids, ignoring unknown ones; return how many were removed."""
        old = self._stored
        wanted = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        pos = old.positions(wanted)
        present = pos >= 0
        if not present.any():
            return 0
        gone = pos[present]
        self._publish(StoredVectors(old.file, np.delete(old.ids, gone), np.delete(old.rows, gone)))
        self._backend_remove(wanted[present])
        return int(present.sum())

    def __contains__(self, id_: object) -> bool:
        """Return whether id_ is stored."""
        if isinstance(id_, (int, np.integer)) and not isinstance(id_, bool):
            return bool(self._stored.positions(np.array([int(id_)], dtype=np.int64))[0] >= 0)
        return False

    def ids(self) -> np.ndarray:
        """Return the stored ids as a sorted int64 array."""
        return self._stored.ids.copy()

    def vector(self, id_: int) -> np.ndarray:
        """Return a copy of the stored vector for id_ (read from the vector file)."""
        stored = self._stored
        pos = stored.positions(np.array([int(id_)], dtype=np.int64))
        if pos[0] < 0:
            raise KeyError(f"id {int(id_)} is not in the {self.kind} index")
        return stored.read(pos)[0]

    def similarities(self, ids: Sequence[int], query: np.ndarray) -> np.ndarray:
        """Inner product of the query with each stored vector of ``ids`` (NaN where absent)."""
        stored = self._stored
        pos = stored.positions(np.fromiter((int(i) for i in ids), dtype=np.int64))
        out = np.full(pos.size, np.nan, dtype=np.float32)
        present = pos >= 0
        if present.any():
            out[present] = stored.read(pos[present]) @ np.asarray(query, dtype=np.float32)
        return out

    def stored(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (sorted ids, their vectors): reads every vector into RAM, for tools only."""
        stored = self._stored
        return stored.ids.copy(), stored.read(np.arange(stored.ids.size))

    # ----- persistence (matcher.index.persist) -------------------------------------

    def write_files(self, directory: Path, *, final: Path) -> None:
        """Name the vector file inside a new snapshot directory (a hard link when possible)."""
        self._stored.file.place(directory / VECTOR_FILE, final=final / VECTOR_FILE)

    def open_files(self, directory: Path, state: dict[str, Any]) -> None:
        """Open the snapshot's vector file and check its rows against the saved checksum.

        Raises:
            ValueError: the file is missing, short or its rows do not match.
        """
        path = directory / VECTOR_FILE
        if not path.is_file():
            raise ValueError(f"vector file {path} is missing")
        rows, digest = int(state.get("vector_rows", -1)), str(state.get("vector_sha256", ""))
        if rows < 0:
            raise ValueError("the saved state names no vector rows")
        file = VectorFile.open(path, self.dim, rows=rows, sha256=digest)
        self._stored.file.close()
        self._stored = StoredVectors(file, self._stored.ids, self._stored.rows)

    def restore(
        self,
        ids: np.ndarray,
        vectors: np.ndarray | None,
        index: faiss.Index | None,
        state: dict[str, Any],
        arrays: dict[str, np.ndarray],
    ) -> None:
        """Adopt saved ids, their file rows and the trained index as they are (no retraining).

        Raises:
            ValueError: the saved parts do not fit together.
        """
        rows = np.asarray(arrays.get("rows", np.empty(0)), dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        if rows.shape != ids.shape or (ids.size and np.any(np.diff(ids) <= 0)):
            raise ValueError("saved ids are not sorted or do not match their file rows")
        if rows.size and (rows.min() < 0 or rows.max() >= self._stored.file.rows):
            raise ValueError("saved file rows point past the end of the vector file")
        self._publish(StoredVectors(self._stored.file, ids, rows))
        self._trained_on = int(state.get("trained_on", 0))
        if index is None:
            if self._trained_on:
                raise ValueError("the index was trained but its faiss file is absent")
            self._pq = None
            return
        ivf = faiss.extract_index_ivf(index)
        if index.d != self.dim or ivf.code_size != self.code_size or index.ntotal != self._n:
            raise ValueError(
                f"saved faiss index (d={index.d}, {ivf.code_size} bytes a code, {index.ntotal} "
                f"vectors) does not fit d={self.dim}, code_size={self.code_size}, {self._n} vectors"
            )
        self._pq = index

    def _export_state(self) -> tuple[faiss.Index | None, dict[str, Any], dict[str, np.ndarray]]:
        """Return the trained index, the file rows of the ids and the file's checksum."""
        stored = self._stored
        rows = stored.file.rows
        state = {
            "trained_on": self._trained_on,
            "vector_rows": rows,
            "vector_sha256": stored.file.digest(rows),
        }
        return self._pq, state, {"rows": stored.rows}

    # ----- backend hooks ----------------------------------------------------------

    def _backend_add(self, ids: np.ndarray, vectors: np.ndarray, replaced: np.ndarray) -> None:
        """Encode the new vectors, or (re)train when there is enough data or it grew x4."""
        if self._pq is None:
            if self._n >= self.train_min:
                self._backend_rebuild()
            return  # below train_min the search is exact over the file
        # Codebooks trained on a much smaller set give unbalanced lists and worse codes.
        if self._n > self.retrain_growth * self._trained_on:
            self._backend_rebuild()
            return
        pq = self._pq
        with self._pq_lock:
            if replaced.size:
                pq.remove_ids(faiss.IDSelectorBatch(replaced))
        for start in range(0, ids.size, _ADD_CHUNK):  # searches get the lock between chunks
            part = slice(start, start + _ADD_CHUNK)
            with self._pq_lock:
                pq.add_with_ids(vectors[part], ids[part])

    def _backend_remove(self, ids: np.ndarray) -> None:
        """Drop ids from their inverted lists (their rows stay in the file as garbage)."""
        with self._pq_lock:
            if self._pq is not None:
                self._pq.remove_ids(faiss.IDSelectorBatch(ids))

    def _backend_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates by code, then the exact inner product over their stored vectors."""
        stored = self._stored
        scores = np.full((queries.shape[0], k), -np.inf, dtype=np.float32)
        found = np.full((queries.shape[0], k), -1, dtype=np.int64)
        for start in range(0, queries.shape[0], _SEARCH_CHUNK):
            q = queries[start : start + _SEARCH_CHUNK]
            cand = self._candidates(stored, q, k)
            pos = stored.positions(cand.reshape(-1)).reshape(cand.shape)
            valid = pos >= 0  # an id removed since the codes were searched is dropped here
            exact = np.full(cand.shape, -np.inf, dtype=np.float32)
            exact[valid] = np.einsum("ij,ij->i", stored.read(pos[valid]), q[valid.nonzero()[0]])
            best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
            top = np.take_along_axis(exact, best, axis=1)
            ids = np.where(np.isfinite(top), np.take_along_axis(cand, best, axis=1), -1)
            scores[start : start + q.shape[0], : top.shape[1]] = top
            found[start : start + q.shape[0], : top.shape[1]] = ids
        return scores, found

    def _candidates(self, stored: StoredVectors, queries: np.ndarray, k: int) -> np.ndarray:
        """Ids to re-rank: the best by code, or the exact top k while untrained."""
        with self._pq_lock:
            if self._pq is not None:
                ivf = faiss.extract_index_ivf(self._pq)
                wanted = max(self.nprobe, math.ceil(self.probe_fraction * ivf.nlist))
                ivf.nprobe = min(wanted, int(ivf.nlist))
                return self._pq.search(queries, max(k, self.rerank))[1]
        best_s = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
        best_i = np.empty((queries.shape[0], 0), dtype=np.int64)
        for start in range(0, stored.ids.size, _ADD_CHUNK):
            vecs = stored.read(np.arange(start, min(start + _ADD_CHUNK, stored.ids.size)))
            s, r = faiss.knn(queries, vecs, min(k, len(vecs)), metric=faiss.METRIC_INNER_PRODUCT)
            best_s = np.concatenate([best_s, s], axis=1)
            best_i = np.concatenate([best_i, np.where(r >= 0, stored.ids[start + r], -1)], axis=1)
            keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
            best_s = np.take_along_axis(best_s, keep, axis=1)
            best_i = np.take_along_axis(best_i, keep, axis=1)
        return best_i

    def _backend_rebuild(self) -> None:
        """Train codebooks on a sample of the stored vectors, then encode every vector.

        Built aside and swapped in, so searches go on with the previous index meanwhile.
        """
        stored, n = self._stored, self._n
        if n < self.train_min:
            with self._pq_lock:
                self._pq, self._trained_on = None, 0
            return
        nlist = self.nlist or auto_nlist(n)
        # PQ{b}: b sub-quantizers of 8 bits, one byte each.
        rotation = f"OPQ{self.code_size}," if self.opq else ""
        index = faiss.index_factory(
            self.dim, f"{rotation}IVF{nlist},PQ{self.code_size}", faiss.METRIC_INNER_PRODUCT
        )
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        assert isinstance(ivf, faiss.IndexIVFPQ)
        ivf.cp.min_points_per_centroid = 1  # nlist is sized for n; silence faiss' warning
        ivf.pq.cp.min_points_per_centroid = 1
        # On by default (missing in the stubs); 15x the training time, for codes we never compare.
        ivf.do_polysemous_training = False  # type: ignore[attr-defined]
        sample = np.random.default_rng(n).choice(n, size=min(n, self.train_sample), replace=False)
        index.train(stored.read(np.sort(sample)))
        for start in range(0, n, _ADD_CHUNK):
            part = np.arange(start, min(start + _ADD_CHUNK, n))
            index.add_with_ids(stored.read(part), stored.ids[part])
        with self._pq_lock:
            self._pq, self._trained_on = index, n

    # ----- helpers ----------------------------------------------------------------

    def _publish(self, stored: StoredVectors) -> None:
        """Make a new id map (and file) the one searches read."""
        self._stored = stored
        self._n = int(stored.ids.size)

    def _compact(self) -> None:
        """Copy the live rows to a fresh file once more than half of the file is garbage."""
        old = self._stored
        fresh = VectorFile.scratch(self.dim)
        rows = np.empty_like(old.rows)
        for start in range(0, old.ids.size, _ADD_CHUNK):
            part = np.arange(start, min(start + _ADD_CHUNK, old.ids.size))
            rows[part] = fresh.append(old.read(part))
        # The old file closes when the last search reading it lets go of it.
        self._publish(StoredVectors(fresh, old.ids, rows))
