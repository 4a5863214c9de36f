"""Shared contract, errors and raw-vector storage for the vector index backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import faiss
import numpy as np

from matcher.errors import UnavailableError

REBUILD_HINT = "run `matcher index build` to rebuild it"


class VectorIndexError(UnavailableError):
    """Base class of every error raised by matcher.index."""


class IndexCorruptError(VectorIndexError):
    """A saved index is missing files or its checksums/metadata do not match."""


class IndexMismatchError(VectorIndexError, ValueError):
    """An index or vector batch was built for another model or dimension."""


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product index over L2-normalised float32 vectors keyed by int64 ids."""

    kind: ClassVar[str]
    dim: int
    metric: str

    @property
    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable construction parameters."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors, replacing any already stored under the same id."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids, ignoring unknown ones; return how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores float32 (n, k), ids int64 (n, k)), best first, padded with (-inf, -1)."""
        ...

    def __len__(self) -> int:
        """Return the number of stored vectors."""
        ...

    def __contains__(self, id_: object) -> bool:
        """Return whether id_ is stored."""
        ...

    def ids(self) -> np.ndarray:
        """Return the stored ids as a sorted int64 array."""
        ...

    def vector(self, id_: int) -> np.ndarray:
        """Return a copy of the stored vector for id_."""
        ...

    def similarities(self, ids: Sequence[int], query: np.ndarray) -> np.ndarray:
        """Inner product of the query with each stored vector of ids (NaN where absent)."""
        ...


class BaseVectorIndex(ABC):
    """Keeps the raw vectors by id so backends can rebuild, re-rank and upsert cheaply."""

    kind: ClassVar[str]
    metric: str = "ip"
    # Backends that keep their raw vectors in a file of their own rather than in RAM: a save
    # then calls write_files instead of writing vectors.npy, a load calls open_files.
    vectors_on_disk: ClassVar[bool] = False
    _INITIAL_CAPACITY: ClassVar[int] = 1024

    def __init__(self, dim: int) -> None:
        if int(dim) <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self._vecs = np.empty((0, self.dim), dtype=np.float32)
        self._row_ids = np.empty(0, dtype=np.int64)
        self._n = 0
        self._row_of: dict[int, int] = {}

    # ----- public API -------------------------------------------------------------

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable construction parameters."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors, replacing any already stored under the same id."""
        ids_arr, vecs = self._check_batch(ids, vectors)
        if ids_arr.size == 0:
            return
        replaced = np.array([int(i) in self._row_of for i in ids_arr], dtype=bool)
        self._store_put(ids_arr, vecs)
        self._backend_add(ids_arr, vecs, ids_arr[replaced])

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids, ignoring unknown ones; return how many were removed."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        present = np.array([i for i in wanted.tolist() if i in self._row_of], dtype=np.int64)
        if present.size == 0:
            return 0
        for id_ in present.tolist():
            self._store_drop(id_)
        self._backend_remove(present)
        return int(present.size)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores float32 (n, k), ids int64 (n, k)), best first, padded with (-inf, -1)."""
        if int(k) <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        q = self._as_matrix(queries, "queries")
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out_ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        if self._n == 0 or q.shape[0] == 0:
            return scores, out_ids
        k_eff = min(k, self._n)
        d, labels = self._backend_search(q, k_eff)
        # faiss pads with -FLT_MAX; normalise to the documented (-inf, -1) padding.
        missing = labels < 0
        d = np.where(missing, -np.inf, d).astype(np.float32)
        scores[:, :k_eff] = d
        out_ids[:, :k_eff] = np.where(missing, -1, labels)
        return scores, out_ids

    def rebuild(self) -> None:
        """Rebuild the backend structure from the stored vectors (drops tombstones, retrains)."""
        self._backend_rebuild()

    def __len__(self) -> int:
        """Return the number of stored vectors."""
        return self._n

    def __contains__(self, id_: object) -> bool:
        """Return whether id_ is stored."""
        if isinstance(id_, (int, np.integer)) and not isinstance(id_, bool):
            return int(id_) in self._row_of
        return False

    def ids(self) -> np.ndarray:
        """Return the stored ids as a sorted int64 array."""
        return np.sort(self._row_ids[: self._n])

    def vector(self, id_: int) -> np.ndarray:
        """Return a copy of the stored vector for id_."""
        row = self._row_of.get(int(id_))
        if row is None:
            raise KeyError(f"id {int(id_)} is not in the {self.kind} index")
        return self._vecs[row].copy()

    def similarities(self, ids: Sequence[int], query: np.ndarray) -> np.ndarray:
        """Inner product of the query with each stored vector of ``ids`` (NaN where absent).

        One gather and one matrix-vector product for all of them, instead of a copy per id.
        """
        rows = np.fromiter((self._row_of.get(int(i), -1) for i in ids), dtype=np.int64)
        out = np.full(len(rows), np.nan, dtype=np.float32)
        present = rows >= 0
        if present.any():
            out[present] = self._vecs[rows[present]] @ np.asarray(query, dtype=np.float32)
        return out

    def __repr__(self) -> str:
        """Return a short description for logs."""
        return f"{type(self).__name__}(dim={self.dim}, count={self._n}, params={self.params})"

    # ----- persistence (matcher.index.persist) -------------------------------------

    def stored(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (ids, vectors) of every stored row, in row order (live views, not copies)."""
        return self._row_id_view(), self._matrix()

    def export_state(self) -> tuple[faiss.Index | None, dict[str, Any], dict[str, np.ndarray]]:
        """Return (faiss index, JSON state, extra arrays) needed to restore this index exactly."""
        return self._export_state()

    def restore(
        self,
        ids: np.ndarray,
        vectors: np.ndarray | None,
        index: faiss.Index | None,
        state: dict[str, Any],
        arrays: dict[str, np.ndarray],
    ) -> None:
        """Fill an empty index with saved rows and what ``export_state`` returned.

        Raises:
            ValueError: the saved parts do not fit together.
        """
        if vectors is None:
            raise ValueError("the saved index has no vectors")
        self._store_put(ids, vectors)
        self._import_state(index, state, arrays)

    def write_files(self, directory: Path, *, final: Path) -> None:
        """Put the files kept outside RAM into a new snapshot (renamed to ``final`` later)."""
        return None  # vectors in RAM are saved as vectors.npy

    def open_files(self, directory: Path, state: dict[str, Any]) -> None:
        """Open what write_files put in a saved snapshot, before restore()."""
        return None

    # ----- backend hooks ----------------------------------------------------------

    @abstractmethod
    def _backend_add(self, ids: np.ndarray, vectors: np.ndarray, replaced: np.ndarray) -> None:
        """Mirror an upsert (store already updated); `replaced` were present before."""

    @abstractmethod
    def _backend_remove(self, ids: np.ndarray) -> None:
        """Mirror a removal of ids that were present (store already updated)."""

    @abstractmethod
    def _backend_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search with 1 <= k <= len(self); return (scores, external ids) with -1 for gaps."""

    @abstractmethod
    def _backend_rebuild(self) -> None:
        """Recreate the backend structure from the stored vectors."""

    def _export_state(self) -> tuple[faiss.Index | None, dict[str, Any], dict[str, np.ndarray]]:
        """Return (faiss index, JSON state, extra arrays) needed to restore exactly."""
        return None, {}, {}

    def _import_state(
        self, index: faiss.Index | None, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> None:
        """Restore what _export_state produced; raise ValueError if inconsistent."""
        self._backend_rebuild()

    # ----- raw vector store -------------------------------------------------------

    def _matrix(self) -> np.ndarray:
        """Return the live (n, dim) view of the stored vectors in row order."""
        return self._vecs[: self._n]

    def _row_id_view(self) -> np.ndarray:
        """Return the external id of each stored row."""
        return self._row_ids[: self._n]

    def _store_put(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Overwrite existing rows in place and append new ones."""
        new_mask = np.array([int(i) not in self._row_of for i in ids], dtype=bool)
        for id_, vec in zip(ids[~new_mask].tolist(), vecs[~new_mask], strict=True):
            self._vecs[self._row_of[id_]] = vec
        new_ids, new_vecs = ids[new_mask], vecs[new_mask]
        self._reserve(self._n + new_ids.size)
        start = self._n
        self._vecs[start : start + new_ids.size] = new_vecs
        self._row_ids[start : start + new_ids.size] = new_ids
        for offset, id_ in enumerate(new_ids.tolist()):
            self._row_of[id_] = start + offset
        self._n += new_ids.size

    def _store_drop(self, id_: int) -> None:
        """Delete one id by moving the last row into its slot, keeping rows contiguous."""
        row = self._row_of.pop(id_)
        last = self._n - 1
        if row != last:
            moved = int(self._row_ids[last])
            self._vecs[row] = self._vecs[last]
            self._row_ids[row] = moved
            self._row_of[moved] = row
        self._n = last

    def _reserve(self, needed: int) -> None:
        """Grow capacity geometrically so repeated small adds stay amortised O(1)."""
        if needed <= self._vecs.shape[0]:
            return
        cap = max(needed, 2 * self._vecs.shape[0], self._INITIAL_CAPACITY)
        vecs = np.empty((cap, self.dim), dtype=np.float32)
        ids = np.empty(cap, dtype=np.int64)
        vecs[: self._n] = self._vecs[: self._n]
        ids[: self._n] = self._row_ids[: self._n]
        self._vecs, self._row_ids = vecs, ids

    # ----- validation -------------------------------------------------------------

    def _as_matrix(self, x: np.ndarray, what: str) -> np.ndarray:
        """Coerce to a C-contiguous float32 (n, dim) matrix or raise a typed error."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise IndexMismatchError(
                f"{what} must have shape (n, {self.dim}) for this {self.kind} index, "
                f"got {np.shape(x)}; was it embedded with a different model?"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        return np.ascontiguousarray(arr)

    def _check_batch(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate an add() batch; a repeated id keeps its last vector, like sequential upserts."""
        raw = np.asarray(ids)
        if raw.size and not np.issubdtype(raw.dtype, np.integer):
            raise TypeError(f"ids must be integers, got dtype {raw.dtype}")
        ids_arr = raw.astype(np.int64).reshape(-1)
        vecs = self._as_matrix(vectors, "vectors")
        if vecs.shape[0] != ids_arr.size:
            raise ValueError(f"got {ids_arr.size} ids but {vecs.shape[0]} vectors")
        if ids_arr.size and int(ids_arr.min()) < 0:
            # -1 is the padding id in search results, so negative ids would be ambiguous.
            raise ValueError("ids must be non-negative (-1 is reserved for 'no result')")
        uniq, first_in_reversed = np.unique(ids_arr[::-1], return_index=True)
        if uniq.size != ids_arr.size:
            keep = np.sort(ids_arr.size - 1 - first_in_reversed)
            ids_arr, vecs = ids_arr[keep], vecs[keep]
        return ids_arr, vecs
