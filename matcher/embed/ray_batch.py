"""Batch embedding on a Ray cluster: one encoder per actor, vectors into the shared cache.

Texts are deduplicated by content hash and the hashes a space already holds are skipped before
anything is sent; Ray Data's actors (``map_batches`` with a callable class on an actor pool)
each load one encoder with as many intra-op threads as the actor was given CPUs, and the
driver writes what comes back into the embedding cache (``put_many`` is INSERT … ON CONFLICT
DO NOTHING, so runs may overlap). Rows come back in no particular order: they carry their hash.

Ray is optional: it is imported only when a cluster is started (``matcher.embed.ray_cluster``).
Actors never touch the database, so no credentials travel to the cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from matcher.embed.base import EmbeddingCache, Encoder, content_hash
from matcher.embed.ray_cluster import RayOptions, ray_cluster
from matcher.embed.registry import DOCUMENT_BACKEND, NATIVE_MODELS, default_models_dir

# ONNX backends whose document vectors these variants are (the others do not embed documents).
_ONNX_VARIANTS = {"onnx": "fp32", "onnx-int8": "int8"}
_MAX_BLOCKS = 4096


@dataclass(frozen=True)
class Space:
    """A vector space to embed into: the cache's name for its vectors, and how to load its
    encoder on an actor.

    Args:
        name: the model name the cache and the index key the vectors by (``encoder_id``).
        model: the model the encoder loads.
        backend: ``torch``, ``onnx``, ``onnx-int8`` or ``native`` (a model of ``NATIVE_MODELS``).
        models_dir: where ONNX exports are kept; None: each node's own default.
    """

    name: str
    model: str
    backend: str
    batch_size: int = 16
    models_dir: str | None = None

    @classmethod
    def of(
        cls, name: str, model: str, backend: str, *, batch_size: int, models_dir: Path | None
    ) -> Space:
        """The space of a model as the engine loads it (``get_encoder``'s model and backend)."""
        backend = "native" if model in NATIVE_MODELS else DOCUMENT_BACKEND.get(backend, backend)
        return cls(name, model, backend, batch_size, str(models_dir) if models_dir else None)


def _native(space: Space, threads: int) -> Encoder:
    from matcher.embed.multilingual import E5Encoder, UseEncoder

    if space.model == "use-multilingual-v3":
        return UseEncoder(batch_size=max(space.batch_size, 64), threads=threads)
    if space.model == "multilingual-e5-small":
        return E5Encoder(batch_size=space.batch_size, threads=threads)
    return NATIVE_MODELS[space.model](space.batch_size)  # one without a thread setting


def _torch(space: Space, threads: int) -> Encoder:
    import torch

    from matcher.embed.torch import SentenceTransformerEncoder

    torch.set_num_threads(threads)
    return SentenceTransformerEncoder(space.model, batch_size=space.batch_size)


def _onnx(space: Space, threads: int) -> Encoder:
    from matcher.embed.onnx import OnnxEncoder

    directory = Path(space.models_dir) if space.models_dir else default_models_dir()
    return OnnxEncoder(
        space.model,
        variant=_ONNX_VARIANTS[space.backend],
        cache_dir=directory,
        batch_size=space.batch_size,
        threads=threads,
    )


# Backend → factory(space, intra-op threads); get_encoder's backends with a thread setting.
LOADERS: dict[str, Callable[[Space, int], Encoder]] = {
    "native": _native,
    "torch": _torch,
    **dict.fromkeys(_ONNX_VARIANTS, _onnx),
}


def load_encoder(space: Space, threads: int) -> Encoder:
    """The space's encoder with ``threads`` intra-op threads; its name must be the space's."""
    loader = LOADERS.get(space.backend)
    if loader is None:
        raise ValueError(f"cannot embed documents with backend {space.backend!r} on Ray")
    encoder = loader(space, max(1, threads))
    if encoder.name != space.name:
        raise ValueError(f"encoder {encoder.name!r} would write into space {space.name!r}")
    return encoder


def prepare(space: Space) -> None:
    """Do once on the driver what every actor would otherwise race to do (the ONNX export)."""
    if space.backend in _ONNX_VARIANTS and space.models_dir:
        from matcher.embed.onnx_export import ensure_exported

        ensure_exported(space.model, _ONNX_VARIANTS[space.backend], Path(space.models_dir))


class EncodeBatches:
    """Ray Data's callable class: one encoder per actor, its threads from the actor's CPUs."""

    def __init__(self, space: Space) -> None:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        self.encoder = load_encoder(space, int(round(cpus)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A batch of ``hash`` + ``text`` → ``hash`` + ``vector`` (n, dim) float32."""
        vectors = self.encoder.encode([str(t) for t in batch["text"]])
        return {"hash": batch["hash"], "vector": np.asarray(vectors, dtype=np.float32)}


def distinct_texts(texts: Iterable[str]) -> dict[str, str]:
    """Content hash → text, each distinct text once."""
    distinct: dict[str, str] = {}
    for text in texts:
        distinct.setdefault(content_hash(text), text)
    return distinct


def missing_texts(distinct: dict[str, str], space: str, cache: EmbeddingCache) -> dict[str, str]:
    """The hash → text pairs whose vectors the cache does not hold for this space yet."""
    cached = cache.get_many(space, list(distinct))
    return {h: t for h, t in distinct.items() if h not in cached}


@dataclass
class SpaceReport:
    """What one space's run did."""

    space: str
    distinct: int = 0
    cached: int = 0
    encoded: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        """Texts encoded per second of the run (cluster start excluded)."""
        return self.encoded / self.seconds if self.seconds > 0 else 0.0


def encode_on_ray(
    ray: Any,
    todo: dict[str, str],
    space: Space,
    *,
    options: RayOptions,
    write: Callable[[dict[str, np.ndarray]], None],
    progress: bool = False,
) -> int:
    """Encode hash → text on the connected cluster; ``write`` gets each batch of hash → vector
    as it comes back (in no particular order). Returns how many vectors were written."""
    if not todo:
        return 0
    # Longest first: a batch of similar lengths pads little, and the slowest work starts early.
    items = [{"hash": h, "text": t} for h, t in sorted(todo.items(), key=lambda x: -len(x[1]))]
    # About a batch a block, so results stream back; capped so huge inputs stay few blocks.
    blocks = min(max(1, math.ceil(len(items) / options.batch_size)), _MAX_BLOCKS)
    dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        EncodeBatches,
        fn_constructor_kwargs={"space": space},
        batch_size=options.batch_size,
        batch_format="numpy",
        num_cpus=options.cpus_per_worker,
        compute=ray.data.ActorPoolStrategy(size=options.workers),
    )
    bar = tqdm(
        total=len(items), desc=f"embedding {space.name}", unit=" records", disable=not progress
    )
    written = 0
    try:
        for batch in dataset.iter_batches(batch_size=options.batch_size, batch_format="numpy"):
            hashes = [str(h) for h in batch["hash"]]
            write(dict(zip(hashes, batch["vector"], strict=True)))
            written += len(hashes)
            bar.update(len(hashes))
    finally:
        bar.close()
    return written


def embed_texts(
    texts: Sequence[str],
    spaces: Sequence[Space],
    cache: EmbeddingCache,
    options: RayOptions,
    *,
    progress: bool = False,
) -> list[SpaceReport]:
    """Embed texts into the cache of every space on Ray; texts a space holds are skipped.

    The cluster is started only when some space has something to encode. On a remote
    cluster each node keeps ONNX exports in its own default folder.

    Returns:
        One report per space.
    """
    distinct = distinct_texts(texts)
    work: list[tuple[Space, dict[str, str], SpaceReport]] = []
    for space in spaces:
        todo = missing_texts(distinct, space.name, cache)
        report = SpaceReport(space.name, distinct=len(distinct), cached=len(distinct) - len(todo))
        work.append(
            (space if options.address is None else replace(space, models_dir=None), todo, report)
        )
    reports = [report for _, _, report in work]
    if not any(todo for _, todo, _ in work):
        return reports
    with ray_cluster(options) as ray:
        for space, todo, report in work:
            if not todo:
                continue
            prepare(space)
            started = time.perf_counter()

            def write(vectors: dict[str, np.ndarray], name: str = space.name) -> None:
                cache.put_many(name, vectors)

            report.encoded = encode_on_ray(
                ray, todo, space, options=options, write=write, progress=progress
            )
            report.seconds = time.perf_counter() - started
    return reports
