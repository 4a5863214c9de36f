"""Vector index layer: exact, HNSW and IVF inner-product backends with safe persistence."""

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
from matcher.index.registry import BACKENDS, DEFAULT_AUTO_THRESHOLD, backend_params, create_index

__all__ = [
    "BACKENDS",
    "DEFAULT_AUTO_THRESHOLD",
    "BaseVectorIndex",
    "FlatIndex",
    "HNSWIndex",
    "IVFIndex",
    "IndexCorruptError",
    "IndexMeta",
    "IndexMismatchError",
    "VectorIndex",
    "VectorIndexError",
    "backend_params",
    "create_index",
    "clean_interrupted_save",
    "load_index",
    "read_meta",
    "save_index",
]
