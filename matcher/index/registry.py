"""The index backends by name, and the factory that picks one by configuration."""

from __future__ import annotations

import inspect
from typing import Any

from matcher.index.base import BaseVectorIndex
from matcher.index.flat import FlatIndex
from matcher.index.hnsw import HNSWIndex
from matcher.index.ivf import IVFIndex
from matcher.index.pq import IVFPQIndex

BACKENDS: dict[str, type[BaseVectorIndex]] = {
    "flat": FlatIndex,
    "hnsw": HNSWIndex,
    "ivf": IVFIndex,
    "ivfpq": IVFPQIndex,
}

DEFAULT_AUTO_THRESHOLD = 20_000
# auto: compressed codes + re-ranking from disk at and above this many vectors (RESULTS.md,
# "Issue 13: compressed index").
DEFAULT_PQ_THRESHOLD = 250_000
# What `auto` becomes as a collection grows; it never goes back down the list.
_AUTO_ORDER = ("flat", "hnsw", "ivfpq")


def backend_params(kind: str) -> set[str]:
    """Return the keyword parameters accepted by backend `kind`."""
    sig = inspect.signature(_backend(kind).__init__)
    return {p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def create_index(
    kind: str,
    dim: int,
    *,
    n_hint: int = 0,
    params: dict[str, Any] | None = None,
    auto_threshold: int | None = None,
    pq_threshold: int | None = None,
    ignore_unknown: bool = False,
) -> BaseVectorIndex:
    """Create an empty index of a backend kind.

    Args:
        kind: a backend name, or "auto": flat below auto_threshold vectors (n_hint), ivfpq at
            or above pq_threshold, hnsw between.
        params: backend parameters; with "auto" or ignore_unknown (one settings dict for every
            kind) those the chosen backend does not take are dropped, else they are an error.
    """
    opts = dict(params or {})
    threshold = opts.pop("auto_threshold", None)
    if auto_threshold is not None:  # the explicit argument wins over params
        threshold = auto_threshold
    pq_at = opts.pop("pq_threshold", None) if pq_threshold is None else pq_threshold
    if kind == "auto":
        kind = auto_kind(n_hint, auto_threshold=threshold, pq_threshold=pq_at)
        ignore_unknown = True
    cls = _backend(kind)
    if ignore_unknown:
        opts = {k: v for k, v in opts.items() if k in backend_params(kind)}
    unknown = sorted(set(opts) - backend_params(kind))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {kind!r} index; "
            f"valid: {sorted(backend_params(kind)) or 'none'}"
        )
    return cls(dim, **opts)


def auto_kind(n: int, *, auto_threshold: int | None = None, pq_threshold: int | None = None) -> str:
    """The kind `auto` means for n vectors: flat, then hnsw, then ivfpq."""
    flat_below = DEFAULT_AUTO_THRESHOLD if auto_threshold is None else int(auto_threshold)
    pq_from = DEFAULT_PQ_THRESHOLD if pq_threshold is None else int(pq_threshold)
    if n >= pq_from:
        return "ivfpq"
    return "flat" if n < flat_below else "hnsw"


def outgrown(
    kind: str, n: int, *, auto_threshold: int | None = None, pq_threshold: int | None = None
) -> str | None:
    """The kind an `auto` index of `kind` should become at n vectors, or None to stay."""
    target = auto_kind(n, auto_threshold=auto_threshold, pq_threshold=pq_threshold)
    if kind not in _AUTO_ORDER or _AUTO_ORDER.index(target) <= _AUTO_ORDER.index(kind):
        return None
    return target


def _backend(kind: str) -> type[BaseVectorIndex]:
    """Look up a backend class or raise a ValueError listing the valid kinds."""
    try:
        return BACKENDS[kind]
    except KeyError:
        valid = ", ".join([*BACKENDS, "auto"])
        raise ValueError(f"unknown index kind {kind!r}; valid kinds: {valid}") from None
