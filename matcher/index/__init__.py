"""Vector index layer: exact, HNSW, IVF and IVF-PQ inner-product backends, safely persisted."""

from __future__ import annotations

from matcher.index.base import (
    BaseVectorIndex,
    IndexCorruptError,
    IndexMismatchError,
    VectorIndex,
    VectorIndexError,
)
from matcher.index.flat import FlatIndex
from matcher.index.hnsw import HNSWIndex
from matcher.index.ivf import IVFIndex
from matcher.index.persist import (
    IndexMeta,
    clean_interrupted_save,
    load_index,
    read_meta,
    save_index,
)
from matcher.index.pq import IVFPQIndex
from matcher.index.registry import (
    BACKENDS,
    DEFAULT_AUTO_THRESHOLD,
    DEFAULT_PQ_THRESHOLD,
    auto_kind,
    backend_params,
    create_index,
    outgrown,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_AUTO_THRESHOLD",
    "DEFAULT_PQ_THRESHOLD",
    "BaseVectorIndex",
    "FlatIndex",
    "HNSWIndex",
    "IVFIndex",
    "IVFPQIndex",
    "IndexCorruptError",
    "IndexMeta",
    "IndexMismatchError",
    "VectorIndex",
    "VectorIndexError",
    "auto_kind",
    "backend_params",
    "create_index",
    "clean_interrupted_save",
    "load_index",
    "outgrown",
    "read_meta",
    "save_index",
]
