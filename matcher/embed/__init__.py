"""Embedding: the Encoder protocol and cache (base), the backend registry, one file a backend."""

from __future__ import annotations

from matcher.embed.base import (
    PACKAGED_MODELS,
    EmbeddingCache,
    Encoder,
    EncoderUnavailableError,
    QueryEncoder,
    content_hash,
    embed_cached,
    encode_queries,
)
from matcher.embed.encoders import Encoders
from matcher.embed.registry import (
    BACKENDS,
    DOCUMENT_BACKEND,
    NATIVE_MODELS,
    default_models_dir,
    get_encoder,
)

__all__ = [
    "BACKENDS",
    "DOCUMENT_BACKEND",
    "NATIVE_MODELS",
    "PACKAGED_MODELS",
    "EmbeddingCache",
    "Encoder",
    "Encoders",
    "EncoderUnavailableError",
    "QueryEncoder",
    "content_hash",
    "default_models_dir",
    "embed_cached",
    "encode_queries",
    "get_encoder",
]
