"""Keeps each FAISS index in step with the store: load, sync, verify, rebuild."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matcher.config import Settings
from matcher.embed import EmbeddingCache, Encoder, content_hash, embed_cached
from matcher.index import (
    BaseVectorIndex,
    IndexCorruptError,
    IndexMismatchError,
    clean_interrupted_save,
    create_index,
    load_index,
    outgrown,
    read_meta,
    save_index,
)

log = logging.getLogger(__name__)

# A stored vector differs from a fresh embedding of the current text by more than rounding.
STALE_COSINE = 0.999


@dataclass
class VerifyReport:
    """Differences between the database and one index."""

    collection: str
    db_count: int
    index_count: int
    problem: str | None = None  # unreadable, corrupt or built with another model
    missing: list[int] = field(default_factory=list)  # in the database, not in the index
    extra: list[int] = field(default_factory=list)  # in the index, no longer in the database
    stale: list[int] = field(default_factory=list)  # text changed since it was indexed
    # Reports of companion indexes over the same records (e.g. "multilingual"), folded in.
    parts: dict[str, VerifyReport] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the index (and every companion) matches the database exactly."""
        return self.problem is None and not (self.missing or self.extra or self.stale)

    def include(self, label: str, other: VerifyReport) -> None:
        """Fold a companion index's report in: its problem and drifted ids count here too."""
        self.parts[label] = other
        if other.problem:
            note = f"{label} index: {other.problem}"
            self.problem = f"{self.problem}; {note}" if self.problem else note
        for name in ("missing", "extra", "stale"):
            ids = getattr(self, name)
            ids[:] = sorted(set(ids) | set(getattr(other, name)))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (ids truncated to the first 20)."""
        return {
            "collection": self.collection,
            "ok": self.ok,
            "db_count": self.db_count,
            "index_count": self.index_count,
            "problem": self.problem,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "stale": len(self.stale),
            "examples": (self.missing + self.extra + self.stale)[:20],
            **({"parts": {k: r.as_dict() for k, r in self.parts.items()}} if self.parts else {}),
        }


# What the indexer needs from the store: (id, text) of every active record.
Source = Callable[[], Sequence[tuple[int, str]]]


class CollectionIndex:
    """One searchable collection (technologies or needs): vectors on disk, kept in sync.

    Companions are further indexes of the same records in another model's space (the
    multilingual one); every write, rebuild, verify and repair covers them too.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        encoder: Callable[[], Encoder],
        cache: EmbeddingCache,
        source: Source,
        encoder_id: Callable[[], str] | None = None,
        directory: Path | None = None,
        label: str = "primary",
    ) -> None:
        self.name = name
        self.label = label
        self.settings = settings
        self._encoder = encoder
        self._cache = cache
        self._source = source
        self._encoder_id = encoder_id
        self.directory: Path = directory or settings.index_dir / name
        self._index: BaseVectorIndex | None = None
        self.companions: list[CollectionIndex] = []
        # False in a process that does not hold the directory's IndexDirLock: its index lives
        # in memory (kept up to date from the change log) and never touches the files.
        self.writes_files = True
        self._loading = threading.Lock()  # one thread loads (or builds) the index at a time

    @property
    def _model_id(self) -> str:
        # The encoder given to the engine wins (tests, benchmarks); else what the settings name.
        return self._encoder_id() if self._encoder_id else self.settings.encoder_id

    # -- loading -------------------------------------------------------------------------
    @property
    def index(self) -> BaseVectorIndex:
        """The loaded index; built from the store when there is none on disk yet."""
        index = self._index
        if index is not None:
            return index
        # Two threads loading at once: one's cleanup would delete the other's save in progress.
        with self._loading:
            if self._index is None:
                if self.writes_files:  # (a reader would undo the writer's save in progress)
                    clean_interrupted_save(self.directory)  # what a killed save left behind
                try:
                    self._index, _ = load_index(self.directory, expected_model=self._model_id)
                except (FileNotFoundError, IndexCorruptError, IndexMismatchError) as exc:
                    if read_meta(self.directory) is not None:
                        log.warning(
                            "%s %s index unusable (%s); rebuilding", self.name, self.label, exc
                        )
                    self._rebuild_own()
            assert self._index is not None
            return self._index

    def unload(self) -> None:
        """Forget the loaded index: the next use reads it from disk again (or rebuilds it)."""
        self._index = None

    def _new_index(self, n: int, dim: int) -> BaseVectorIndex:
        s = self.settings
        params = {
            "m": s.hnsw_m,
            "ef_construction": s.hnsw_ef_construction,
            "ef_search": s.hnsw_ef_search,
            "nprobe": s.ivf_nprobe,
        }
        return create_index(
            s.index_kind,
            dim,
            n_hint=n,
            params=params,
            auto_threshold=s.index_auto_threshold,
            pq_threshold=s.index_pq_threshold,
            ignore_unknown=True,  # one settings dict for every kind
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of texts in this index's space (through the embedding cache)."""
        return embed_cached(self._encoder(), texts, self._cache, progress=self.settings.progress)

    def vector_of(self, doc_id: int, text: str) -> np.ndarray:
        """A record's indexed vector; its text embedded when the index does not hold it."""
        index = self.index
        if doc_id in index:
            return index.vector(doc_id)
        return self.embed([text])[0]

    def save(self) -> None:
        """Write the index atomically with its metadata (only where this process may)."""
        if self._index is not None and self.writes_files:
            save_index(
                self._index,
                self.directory,
                model=self._model_id,
                extra={"collection": self.name},
            )

    # -- writing -------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Build the index and its companions from scratch (embeddings come from the cache)."""
        count = self._rebuild_own()
        for companion in self.companions:
            companion.rebuild()
        return count

    def _rebuild_own(self) -> int:
        records = self._source()
        encoder = self._encoder()
        vectors = self.embed([t for _, t in records])
        index = self._new_index(len(records), encoder.dim)
        if records:
            index.add(np.array([i for i, _ in records], dtype=np.int64), vectors)
        self._index = index
        self.save()
        return len(records)

    def upsert(self, items: Sequence[tuple[int, str]], *, save: bool = True) -> None:
        """Embed and add or replace these records without a rebuild."""
        if not items:
            return
        vectors = self.embed([t for _, t in items])
        self.index.add(np.array([i for i, _ in items], dtype=np.int64), vectors)
        self._grow_past_threshold()
        if save:
            self.save()
        for companion in self.companions:
            companion.upsert(items, save=save)

    def _grow_past_threshold(self) -> None:
        """With `auto`, an index past its kind's threshold becomes the next kind (no re-encoding).

        flat -> HNSW at ``index_auto_threshold``, -> IVF-PQ at ``index_pq_threshold``.
        """
        index = self._index
        s = self.settings
        if (
            index is None
            or s.index_kind != "auto"
            or outgrown(
                index.kind,
                len(index),
                auto_threshold=s.index_auto_threshold,
                pq_threshold=s.index_pq_threshold,
            )
            is None
        ):
            return
        ids = index.ids()
        grown = self._new_index(len(ids), index.dim)
        grown.add(ids, np.stack([index.vector(int(i)) for i in ids]))
        self._index = grown

    def remove(self, ids: Sequence[int], *, save: bool = True) -> int:
        """Remove records (archived or deleted) from the index."""
        removed = self.index.remove(np.asarray(ids, dtype=np.int64)) if ids else 0
        if removed and save:
            self.save()
        for companion in self.companions:
            companion.remove(ids, save=save)
        return removed

    # -- checking ------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Compare the index (and its companions) on disk with the store: corrupt, missing,
        extra or stale entries."""
        report = self._verify_own()
        for companion in self.companions:
            report.include(companion.label, companion._verify_own())
        return report

    def _verify_own(self) -> VerifyReport:
        records = self._source()
        report = VerifyReport(self.name, db_count=len(records), index_count=0)
        if not self.directory.exists():
            if records:  # an empty collection needs no index yet
                report.problem = "no index on disk: run `matcher index build`"
                report.missing = [i for i, _ in records]
            return report
        try:
            index, _ = load_index(self.directory, expected_model=self._model_id)
        except (FileNotFoundError, IndexCorruptError, IndexMismatchError) as exc:
            report.problem = str(exc)
            return report
        report.index_count = len(index)
        db_ids = {i for i, _ in records}
        report.extra = sorted(int(i) for i in index.ids() if int(i) not in db_ids)
        present = [(i, t) for i, t in records if i in index]
        report.missing = sorted(i for i, _ in records if i not in index)
        cached = self._cache.get_many(self._model_id, [content_hash(t) for _, t in present])
        for doc_id, text in present:
            fresh = cached.get(content_hash(text))
            if fresh is None or float(np.dot(fresh, index.vector(doc_id))) < STALE_COSINE:
                report.stale.append(doc_id)
        return report

    def repair(self, *, full: bool = False) -> VerifyReport:
        """Fix what verify finds, companions included; a corrupt or foreign index, or ``full``,
        is rebuilt."""
        report = self._repair_own(full=full)
        for companion in self.companions:
            report.include(companion.label, companion._repair_own(full=full))
        return report

    def _repair_own(self, *, full: bool) -> VerifyReport:
        report = self._verify_own()
        if full or report.problem is not None:
            self._index = None
            self._rebuild_own()
            return report
        by_id = dict(self._source())
        self._index = None  # reload what is on disk before patching it
        todo = [(i, by_id[i]) for i in report.missing + report.stale]
        if todo:
            vectors = self.embed([t for _, t in todo])
            self.index.add(np.array([i for i, _ in todo], dtype=np.int64), vectors)
            self._grow_past_threshold()
        if report.extra:
            self.index.remove(np.asarray(report.extra, dtype=np.int64))
        self.save()
        return report

    def stats(self) -> dict[str, Any]:
        """What is on disk: the saved metadata (companions under their label)."""
        meta = read_meta(self.directory)
        return {
            "collection": self.name,
            "path": str(self.directory),
            **(meta.to_dict() if meta is not None else {"count": 0, "built": False}),
            **{c.label: c.stats() for c in self.companions},
        }
