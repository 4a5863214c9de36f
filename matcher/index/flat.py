"""Exact (brute-force) inner-product index."""

from __future__ import annotations

from typing import Any, ClassVar

import faiss
import numpy as np

from matcher.index.base import BaseVectorIndex


class FlatIndex(BaseVectorIndex):
    """Exact search straight over the stored matrix, so upserts/deletes cost nothing extra."""

    kind: ClassVar[str] = "flat"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)

    @property
    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable construction parameters."""
        return {}

    def _backend_add(self, ids: np.ndarray, vectors: np.ndarray, replaced: np.ndarray) -> None:
        """Nothing to mirror: the stored matrix is the index."""

    def _backend_remove(self, ids: np.ndarray) -> None:
        """Nothing to mirror: the stored matrix is the index."""

    def _backend_rebuild(self) -> None:
        """Nothing to rebuild: the stored matrix is the index."""

    def _backend_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k via faiss.knn (BLAS) over the stored rows, mapped to external ids."""
        # faiss.knn avoids keeping a second copy of the vectors inside an IndexFlatIP.
        scores, rows = faiss.knn(queries, self._matrix(), k, metric=faiss.METRIC_INNER_PRODUCT)
        row_ids = self._row_id_view()
        ids = np.where(rows >= 0, row_ids[np.clip(rows, 0, None)], -1)
        return scores, ids.astype(np.int64)
