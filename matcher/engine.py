"""The engine facade: ingest into the store, keep indexes in sync, match both ways."""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from matcher.config import Settings, get_settings
from matcher.domain import BrokerIn, Match, NeedIn, TechnologyIn
from matcher.embed import Encoder, content_hash, encode_queries, get_encoder
from matcher.errors import InvalidInputError, NotFoundError
from matcher.index.collection import CollectionIndex
from matcher.ingest import ImportBatch, RowError, detect_language, read_file
from matcher.pipeline import Matcher
from matcher.retrieve.crosslingual import LanguageSpace
from matcher.retrieve.lexical import LexicalIndex
from matcher.store import repo
from matcher.store.db import make_engine, migrate, session_factory, transaction
from matcher.store.models import NeedRow, TechnologyRow
from matcher.taxonomy import Taxonomy, load_taxonomy


class ImportRejectedError(InvalidInputError):
    """An import had invalid rows; nothing was written."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors[:50])
        more = f"\n  … and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__(
            f"{len(self.errors)} invalid row(s); nothing was imported "
            f"(fix them, or pass --skip-invalid to import only the valid rows):\n{lines}{more}"
        )


def _language(row: Any) -> str:
    return getattr(row, "language", None) or "en"


@dataclass(frozen=True)
class CollectionView:
    """A snapshot of a collection for ranking: BM25, detached rows and their texts by id."""

    lexical: LexicalIndex
    rows: dict[int, Any]
    texts: dict[int, str]
    languages: frozenset[str] = frozenset()  # what the active records are written in
    # The multilingual space of these rows, built on the first query that needs it.
    spaces: dict[str, LanguageSpace] = field(default_factory=dict, compare=False)


class Record(SimpleNamespace):
    """A stored row's column values as plain attributes, detached from the database.

    Ranking reads several attributes of every candidate (~200 per query); an ORM attribute
    costs several times a plain one, so the in-memory view holds these instead of rows.
    """


def record_of(row: Any) -> Record:
    """The column values of an ORM row as a ``Record``."""
    return Record(**{c.key: getattr(row, c.key) for c in sa_inspect(row).mapper.column_attrs})


@dataclass
class ImportResult:
    kind: str
    created: int = 0
    updated: int = 0
    skipped: list[RowError] = field(default_factory=list)


class Engine:
    """Store + encoder + indexes + ranking, shared by the CLI, the API and the benchmarks."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        encoder: Encoder | None = None,
        multilingual_encoder: Encoder | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.settings.ensure_home()
        if self.settings.faiss_threads > 0:
            import faiss

            faiss.omp_set_num_threads(self.settings.faiss_threads)
        self.db = make_engine(self.settings.effective_database_url)
        migrate(self.db)
        self.sessions = session_factory(self.db)
        self.taxonomy: Taxonomy = load_taxonomy(self.settings.data_dir)
        self._encoder = encoder
        self._multilingual_encoder = multilingual_encoder
        self._lock = threading.RLock()
        self.cache = repo.SqlEmbeddingCache(self.sessions)
        sources = {"technologies": self._technology_texts, "needs": self._need_texts}
        self.indexes = {
            name: CollectionIndex(
                name,
                settings=self.settings,
                encoder=lambda: self.encoder,
                cache=self.cache,
                source=source,
                encoder_id=self._encoder_id,
            )
            for name, source in sources.items()
        }
        # The same records in the multilingual space (Chinese and cross-language pairs), a
        # companion of each index so that writes, verify and repair cover it.
        self.multilingual_indexes: dict[str, CollectionIndex] = {}
        if self.settings.multilingual_enabled:
            for name, source in sources.items():
                companion = CollectionIndex(
                    name,
                    settings=self.settings,
                    encoder=lambda: self.multilingual_encoder,
                    cache=self.cache,
                    source=source,
                    encoder_id=self._multilingual_id,
                    directory=self.settings.index_dir / f"{name}.multilingual",
                    label="multilingual",
                )
                self.indexes[name].companions.append(companion)
                self.multilingual_indexes[name] = companion
        self._views: dict[str, CollectionView] = {}
        # Domain, readiness and region features by the values they depend on (matcher.match).
        self.feature_memo: dict[tuple[Any, ...], Any] = {}
        self.matcher = Matcher(self)

    @property
    def encoder(self) -> Encoder:
        """The embedding model, loaded on first use."""
        if self._encoder is None:
            self._encoder = get_encoder(
                self.settings.model,
                batch_size=self.settings.batch_size,
                backend=self.settings.encoder_backend,
                cache_dir=self.settings.models_dir,
            )
        return self._encoder

    def _encoder_id(self) -> str:
        # An encoder handed in (tests, benchmarks) names its own vectors; otherwise the settings
        # do, so that loading an index never has to load the model.
        return self._encoder.name if self._encoder is not None else self.settings.encoder_id

    @property
    def multilingual_encoder(self) -> Encoder:
        """The multilingual model (``MATCHER_MULTILINGUAL_MODEL``), loaded on first use."""
        if self._multilingual_encoder is None:
            if not self.settings.multilingual_enabled:
                raise RuntimeError("the multilingual space is off (MATCHER_MULTILINGUAL_MODEL)")
            self._multilingual_encoder = get_encoder(
                self.settings.multilingual_model, batch_size=self.settings.batch_size
            )
        return self._multilingual_encoder

    def _multilingual_id(self) -> str:
        if self._multilingual_encoder is not None:
            return self._multilingual_encoder.name
        return self.settings.multilingual_model

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    # -- sources of text -----------------------------------------------------------------
    def _technology_texts(self) -> list[tuple[int, str]]:
        with self.sessions() as session:
            return [(r.id, repo.technology_text(r)) for r in repo.active_technologies(session)]

    def _need_texts(self) -> list[tuple[int, str]]:
        with self.sessions() as session:
            return [(r.id, repo.need_text(r)) for r in repo.active_needs(session)]

    def view(self, collection: str) -> CollectionView:
        """The active records of a collection in memory with their BM25 index (rebuilt on writes).

        Ranking reads rows and texts from here, so a query touches no database.
        """
        with self._lock:
            if collection not in self._views:
                rows: list[Any]
                with self.sessions() as session:
                    found: Sequence[Any] = (
                        repo.active_technologies(session)
                        if collection == "technologies"
                        else repo.active_needs(session)
                    )
                    rows = [record_of(r) for r in found]
                text_of = repo.technology_text if collection == "technologies" else repo.need_text
                texts = {r.id: text_of(r) for r in rows}
                self._views[collection] = CollectionView(
                    lexical=LexicalIndex(list(texts), list(texts.values())),
                    rows={r.id: r for r in rows},
                    texts=texts,
                    languages=frozenset(_language(r) for r in rows),
                )
            return self._views[collection]

    def lexical(self, collection: str) -> LexicalIndex:
        """BM25 over a collection's active records."""
        return self.view(collection).lexical

    def language_space(self, collection: str) -> LanguageSpace | None:
        """The collection's records in the multilingual space, grouped by language (None when
        the multilingual space is off). Built once per view, so writes rebuild it."""
        companion = self.multilingual_indexes.get(collection)
        if companion is None:
            return None
        view = self.view(collection)
        with self._lock:
            if "space" not in view.spaces:
                languages = {i: _language(r) for i, r in view.rows.items()}
                view.spaces["space"] = LanguageSpace.build(
                    languages, companion.index, self.indexes[collection].index
                )
            return view.spaces["space"]

    # -- writing -------------------------------------------------------------------------
    def save_records(self, kind: str, records: Sequence[BaseModel]) -> ImportResult:
        """Upsert validated records in one transaction, then index what changed."""
        result = ImportResult(kind=kind)
        changed: list[Any] = []
        with self._lock, transaction(self.sessions) as session:
            for record in records:
                row, created = self._save_one(session, record)
                result.created += created
                result.updated += not created
                if row is not None:
                    changed.append(row)
            session.flush()
            changed_texts = [(row.id, self._text_of(row)) for row in changed]
        if kind in self.indexes and changed_texts:
            self.indexes[kind].upsert(changed_texts)
            self._views.pop(kind, None)
        return result

    def _text_of(self, row: Any) -> str:
        return repo.technology_text(row) if isinstance(row, TechnologyRow) else repo.need_text(row)

    def _save_one(self, session: Session, record: BaseModel) -> tuple[Any, bool]:
        if isinstance(record, TechnologyIn):
            text = repo.technology_text(record)
            language = record.language.value if record.language else detect_language(text)
            return repo.upsert_technology(
                session, record=record, language=language, content_hash=content_hash(text)
            )
        if isinstance(record, NeedIn):
            text = repo.need_text(record)
            language = record.language.value if record.language else detect_language(text)
            return repo.upsert_need(
                session, record=record, language=language, content_hash=content_hash(text)
            )
        if isinstance(record, BrokerIn):
            row, created = repo.upsert_broker(session, record=record)
            return None, created
        raise TypeError(f"cannot store {type(record).__name__}")

    def import_file(self, path: Path, kind: str, *, skip_invalid: bool = False) -> ImportResult:
        """Validate a whole file, then write it; any bad row rejects it unless ``skip_invalid``."""
        batch: ImportBatch = read_file(Path(path), kind, self.taxonomy)
        if batch.errors and not skip_invalid:
            raise ImportRejectedError(batch.errors)
        result = self.save_records(kind, [record for _, record in batch.records])
        result.skipped = batch.errors
        return result

    def archive(self, kind: str, key: str | int) -> None:
        """Archive a technology or need: kept in the store, gone from search."""
        model = TechnologyRow if kind == "technologies" else NeedRow
        with self._lock, transaction(self.sessions) as session:
            row = repo.get_by_ref_or_id(session, model, key)
            if row is None:
                raise NotFoundError(f"no {kind[:-1]} with id {key!r}")
            row.status = repo.ARCHIVED
            row_id = row.id
        self.indexes[kind].remove([row_id])
        self._views.pop(kind, None)

    def load_demo(self) -> dict[str, ImportResult]:
        """Import the shipped demo data set (idempotent) and bring the indexes up to date."""
        demo = self.settings.data_dir / "demo"
        results = {
            kind: self.import_file(demo / f"{kind}.jsonl", kind)
            for kind in ("technologies", "needs", "brokers")
        }
        for index in self.indexes.values():
            index.repair()
        return results

    def demo_intended(self) -> dict[str, dict[str, int]]:
        """Intended answers of the demo needs: need ref → {technology ref: grade}."""
        path = self.settings.data_dir / "demo" / "intended.tsv"
        out: dict[str, dict[str, int]] = {}
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                out.setdefault(row["need_id"], {})[row["technology_id"]] = int(row["grade"])
        return out

    # -- matching (delegated) ------------------------------------------------------------
    def match_need(
        self,
        key: str | int,
        *,
        top: int = 10,
        persist: bool = True,
        exclude: frozenset[int] = frozenset(),
    ) -> list[Match]:
        """Ranked technologies for a stored need (``exclude``: technology ids to leave out)."""
        return self.matcher.for_need(key, top=top, persist=persist, exclude=exclude)

    def match_technology(self, key: str | int, *, top: int = 10) -> list[Match]:
        """Ranked needs for a stored technology."""
        return self.matcher.for_technology(key, top=top)

    def match_text(self, text: str, **kwargs: Any) -> list[Match]:
        """Ranked technologies (or needs) for free text with optional filters."""
        return self.matcher.for_text(text, **kwargs)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector of an ad-hoc query text (never cached: queries are one-off)."""
        return encode_queries(self.encoder, [text])[0]

    def embed_query_multilingual(self, text: str) -> np.ndarray:
        """Vector of an ad-hoc query text in the multilingual space."""
        return encode_queries(self.multilingual_encoder, [text])[0]
