"""Approximate inner-product index on inverted lists (IVF-Flat) with automatic retraining."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import faiss
import numpy as np

from matcher.index.base import BaseVectorIndex

# faiss warns below this many training points per centroid; clustering is unreliable under it.
_MIN_POINTS_PER_LIST = 39


def auto_nlist(n: int) -> int:
    """Return the number of inverted lists for n vectors: ~4*sqrt(n), min 1, <= n/39."""
    return max(1, min(round(4 * math.sqrt(max(n, 0))), n // _MIN_POINTS_PER_LIST))


class IVFIndex(BaseVectorIndex):
    """IVF-Flat trained on the stored vectors; retrains when the index outgrows its training."""

    kind: ClassVar[str] = "ivf"

    def __init__(
        self,
        dim: int,
        *,
        nlist: int | None = None,
        nprobe: int = 16,
        retrain_growth: float = 4.0,
    ) -> None:
        super().__init__(dim)
        if nlist is not None and nlist < 1:
            raise ValueError(f"nlist must be >= 1 or None (auto), got {nlist}")
        if nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        if retrain_growth <= 1.0:
            raise ValueError(f"retrain_growth must be > 1, got {retrain_growth}")
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = int(nprobe)
        self.retrain_growth = float(retrain_growth)
        self._trained_on = 0
        self._ivf: faiss.IndexIVF | None = None

    @property
    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable construction parameters."""
        return {"nlist": self.nlist, "nprobe": self.nprobe, "retrain_growth": self.retrain_growth}

    @property
    def trained_nlist(self) -> int:
        """Return the number of lists of the current training (0 when untrained)."""
        return 0 if self._ivf is None else int(self._ivf.nlist)

    @property
    def trained_on(self) -> int:
        """Return how many vectors the current centroids were trained on."""
        return self._trained_on

    # ----- backend hooks ----------------------------------------------------------

    def _backend_add(self, ids: np.ndarray, vectors: np.ndarray, replaced: np.ndarray) -> None:
        """Add incrementally, or retrain when centroids no longer describe the data."""
        # Centroids trained on a much smaller set give badly unbalanced lists, hurting recall.
        if self._ivf is None or len(self) > self.retrain_growth * self._trained_on:
            self._backend_rebuild()
            return
        if replaced.size:
            self._ivf.remove_ids(faiss.IDSelectorBatch(replaced))
        self._ivf.add_with_ids(vectors, ids)

    def _backend_remove(self, ids: np.ndarray) -> None:
        """Drop ids from their inverted lists."""
        if self._ivf is not None:
            self._ivf.remove_ids(faiss.IDSelectorBatch(ids))

    def _backend_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Probe the nearest lists; labels are already external ids."""
        if self._ivf is None:  # unreachable while len(self) > 0, kept as a guard
            self._backend_rebuild()
        assert self._ivf is not None
        params = faiss.SearchParametersIVF()
        params.nprobe = min(self.nprobe, int(self._ivf.nlist))
        scores, ids = self._ivf.search(queries, k, params=params)
        return scores, ids.astype(np.int64)

    def _backend_rebuild(self) -> None:
        """Train fresh centroids on all stored vectors and re-add them."""
        n = len(self)
        if n == 0:
            self._ivf, self._trained_on = None, 0
            return
        nlist = min(self.nlist or auto_nlist(n), n)  # k-means needs at least nlist points
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.min_points_per_centroid = 1  # nlist is already sized; silence faiss' stderr warning
        matrix = self._matrix()
        ivf.train(matrix)
        ivf.add_with_ids(matrix, self._row_id_view())
        ivf.nprobe = min(self.nprobe, nlist)
        self._ivf, self._quantizer, self._trained_on = ivf, quantizer, n

    def _export_state(self) -> tuple[faiss.Index | None, dict[str, Any], dict[str, np.ndarray]]:
        """Return the trained IVF index and how many vectors it was trained on."""
        return self._ivf, {"trained_on": self._trained_on}, {}

    def _import_state(
        self, index: faiss.Index | None, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> None:
        """Adopt the saved IVF index as-is so loading never retrains."""
        if index is None:
            if len(self):
                raise ValueError("vectors are stored but the IVF index file is absent")
            self._ivf, self._trained_on = None, 0
            return
        if not isinstance(index, faiss.IndexIVF) or index.d != self.dim or not index.is_trained:
            raise ValueError(
                "saved faiss index is not a trained IVF index of the expected dimension"
            )
        if index.ntotal != len(self):
            raise ValueError(f"IVF index holds {index.ntotal} vectors, expected {len(self)}")
        self._ivf = index
        self._trained_on = int(state.get("trained_on", len(self)))
