"""The index backends by name, and the factory that picks one by configuration."""

from __future__ import annotations

import inspect
from typing import Any

from matcher.index.base import BaseVectorIndex
from matcher.index.flat import FlatIndex
from matcher.index.hnsw import HNSWIndex
from matcher.index.ivf import IVFIndex

BACKENDS: dict[str, type[BaseVectorIndex]] = {
    "flat": FlatIndex,
    "hnsw": HNSWIndex,
    "ivf": IVFIndex,
}

DEFAULT_AUTO_THRESHOLD = 20_000


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
) -> BaseVectorIndex:
    """Create an empty index; kind "auto" picks flat below auto_threshold vectors, else hnsw."""
    opts = dict(params or {})
    threshold = opts.pop("auto_threshold", None)
    if auto_threshold is not None:  # the explicit argument wins over params
        threshold = auto_threshold
    threshold = DEFAULT_AUTO_THRESHOLD if threshold is None else int(threshold)
    if kind == "auto":
        kind = "flat" if n_hint < threshold else "hnsw"
        # Callers pass one settings dict for whichever backend wins; drop the other's keys.
        accepted = backend_params(kind)
        opts = {k: v for k, v in opts.items() if k in accepted}
    cls = _backend(kind)
    unknown = sorted(set(opts) - backend_params(kind))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {kind!r} index; "
            f"valid: {sorted(backend_params(kind)) or 'none'}"
        )
    return cls(dim, **opts)


def _backend(kind: str) -> type[BaseVectorIndex]:
    """Look up a backend class or raise a ValueError listing the valid kinds."""
    try:
        return BACKENDS[kind]
    except KeyError:
        valid = ", ".join([*BACKENDS, "auto"])
        raise ValueError(f"unknown index kind {kind!r}; valid kinds: {valid}") from None
