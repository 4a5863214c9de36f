"""Embeddings cached by model and content hash, so re-runs never pay for encoding twice."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matcher.embed import Encoder, embed_cached, encode_queries
from matcher.store.db import make_engine, migrate, session_factory
from matcher.store.repo import SqlEmbeddingCache

OUT = Path(os.environ.get("MATCHER_BENCH_OUT", Path(__file__).resolve().parent / "out"))


def bench_cache(path: Path | None = None) -> SqlEmbeddingCache:
    """The benchmark embedding cache (a SQLite file under benchmarks/out/)."""
    path = path or OUT / "embeddings.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return SqlEmbeddingCache(session_factory(engine))


def embed(encoder: Encoder, texts: Sequence[str], *, progress: bool = True) -> np.ndarray:
    """Embed texts through the benchmark cache."""
    return embed_cached(encoder, texts, bench_cache(), progress=progress)


class _QueryPath:
    """An encoder's query path seen as an encoder of its own (its own cache entries)."""

    def __init__(self, encoder: Encoder) -> None:
        self.name, self.dim, self._encoder = f"{encoder.name}#query", encoder.dim, encoder

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return encode_queries(self._encoder, texts)


def embed_queries(encoder: Encoder, texts: Sequence[str], *, progress: bool = True) -> np.ndarray:
    """Embed search queries through the benchmark cache, by the encoder's query path if any."""
    if not hasattr(encoder, "encode_query"):
        return embed(encoder, texts, progress=progress)
    return embed(_QueryPath(encoder), texts, progress=progress)
