"""Approximate inner-product index on an HNSW graph with tombstone deletes."""

from __future__ import annotations

from typing import Any, ClassVar

import faiss
import numpy as np

from matcher.index.base import BaseVectorIndex


class HNSWIndex(BaseVectorIndex):
    """HNSW graph; graph nodes map to external ids, deletes are tombstones until a rebuild."""

    kind: ClassVar[str] = "hnsw"

    def __init__(
        self,
        dim: int,
        *,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        rebuild_fraction: float = 0.2,
    ) -> None:
        super().__init__(dim)
        if m < 2 or ef_construction < 1 or ef_search < 1:
            raise ValueError(
                f"need m >= 2, ef_construction >= 1, ef_search >= 1; "
                f"got m={m}, ef_construction={ef_construction}, ef_search={ef_search}"
            )
        if not 0.0 < rebuild_fraction <= 1.0:
            raise ValueError(f"rebuild_fraction must be in (0, 1], got {rebuild_fraction}")
        self.m = int(m)  # graph degree, faiss' M
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.rebuild_fraction = float(rebuild_fraction)
        self._graph: faiss.IndexHNSW
        self._labels: np.ndarray  # graph node -> external id
        self._alive: np.ndarray  # graph node -> not a tombstone
        self._node_of: dict[int, int]  # external id -> its live graph node
        self._dead = 0
        self._reset_graph()

    @property
    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable construction parameters."""
        return {
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "rebuild_fraction": self.rebuild_fraction,
        }

    @property
    def tombstones(self) -> int:
        """Return how many graph nodes are deleted but not yet compacted away."""
        return self._dead

    # ----- backend hooks ----------------------------------------------------------

    def _backend_add(self, ids: np.ndarray, vectors: np.ndarray, replaced: np.ndarray) -> None:
        """Tombstone the old nodes of replaced ids, then append new nodes to the graph."""
        # HNSW cannot update a node's vector in place, so an upsert is delete + insert.
        self._kill(replaced)
        start = self._graph.ntotal
        self._graph.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._alive = np.concatenate([self._alive, np.ones(ids.size, dtype=bool)])
        for offset, id_ in enumerate(ids.tolist()):
            self._node_of[id_] = start + offset
        self._maybe_compact()

    def _backend_remove(self, ids: np.ndarray) -> None:
        """Tombstone the nodes of removed ids; compact when too many are dead."""
        self._kill(ids)
        self._maybe_compact()

    def _backend_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Graph search restricted to live nodes, mapped to external ids."""
        # ef below k would silently truncate the candidate list.
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing in stubs
        params.efSearch = max(self.ef_search, k)
        bitmap = None
        if self._dead:
            # Filtering inside the graph walk keeps k results even with many tombstones,
            # unlike post-filtering an over-fetched list.
            bitmap = np.packbits(self._alive, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(self._alive.size, faiss.swig_ptr(bitmap))
        scores, nodes = self._graph.search(queries, k, params=params)
        del bitmap  # the selector points into it, so it had to outlive search()
        ids = np.where(nodes >= 0, self._labels[np.clip(nodes, 0, None)], -1)
        return scores, ids.astype(np.int64)

    def _backend_rebuild(self) -> None:
        """Build a fresh graph from the live stored vectors, dropping all tombstones."""
        self._reset_graph()
        if len(self):
            ids = self._row_id_view().copy()
            self._graph.add(self._matrix())
            self._labels = ids
            self._alive = np.ones(ids.size, dtype=bool)
            self._node_of = {id_: node for node, id_ in enumerate(ids.tolist())}

    def _export_state(self) -> tuple[faiss.Index | None, dict[str, Any], dict[str, np.ndarray]]:
        """Return the graph plus node->id labels and the tombstone mask."""
        return self._graph, {}, {"labels": self._labels, "alive": self._alive}

    def _import_state(
        self, index: faiss.Index | None, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> None:
        """Adopt a saved graph as-is so loading never pays for a rebuild."""
        labels = np.asarray(arrays.get("labels"), dtype=np.int64)
        alive = np.asarray(arrays.get("alive"), dtype=bool)
        if not isinstance(index, faiss.IndexHNSW) or index.d != self.dim:
            raise ValueError("saved faiss index is not an HNSW index of the expected dimension")
        if not (index.ntotal == labels.size == alive.size):
            raise ValueError(
                f"graph has {index.ntotal} nodes but {labels.size} labels / {alive.size} flags"
            )
        live = labels[alive]
        if live.size != len(self) or not np.array_equal(np.sort(live), self.ids()):
            raise ValueError("live graph nodes do not match the stored ids")
        self._graph = index
        self._graph.hnsw.efSearch = self.ef_search
        self._labels, self._alive = labels, alive
        self._dead = int(alive.size - live.size)
        self._node_of = {int(labels[n]): int(n) for n in np.flatnonzero(alive)}

    # ----- helpers ----------------------------------------------------------------

    def _reset_graph(self) -> None:
        """Create an empty graph with the configured parameters."""
        self._graph = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        self._graph.hnsw.efConstruction = self.ef_construction
        self._graph.hnsw.efSearch = self.ef_search
        self._labels = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self._node_of = {}
        self._dead = 0

    def _kill(self, ids: np.ndarray) -> None:
        """Mark the current nodes of ids as tombstones."""
        for id_ in ids.tolist():
            node = self._node_of.pop(int(id_), None)
            if node is not None and self._alive[node]:
                self._alive[node] = False
                self._dead += 1

    def _maybe_compact(self) -> None:
        """Rebuild once tombstones exceed rebuild_fraction, since they still cost search time."""
        total = self._graph.ntotal
        if total and self._dead > self.rebuild_fraction * total:
            self._backend_rebuild()
