"""The catalogue: writes (save, import, archive) and the in-memory views queries read.

A write embeds its texts first, with no lock held (the vectors land in the embedding cache),
then takes the write lock for its one transaction only, then brings the collection's indexes
and its in-memory view up to date under the index lock, for the records it wrote, from what the
store holds now (cache hits, no encoder); a query touches no database. No lock is held
while the encoder runs, so a slow or large write never holds up searches or other writes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from matcher.domain import BrokerIn, NeedIn, Side, TechnologyIn
from matcher.embed import content_hash
from matcher.errors import ConflictError, InvalidInputError, NotFoundError
from matcher.index.collection import CollectionIndex
from matcher.infer import DomainInferrer
from matcher.ingest import ImportBatch, RowError, detect_language, read_file
from matcher.retrieve.bm25 import LexicalIndex
from matcher.retrieve.crosslingual import LanguageSpace
from matcher.retrieve.scratch import Scratch
from matcher.retrieve.view import CollectionView, ViewRecord, language
from matcher.store import repo
from matcher.store.db import transaction
from matcher.store.repo import changes
from matcher.taxonomy import Taxonomy


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


# Runs inside a write's transaction with the rows written (an audit entry, a tracking link).
BeforeCommit = Callable[[Session, list[Any]], None]


class RecordExistsError(ConflictError):
    """A new record's reference is taken (archived records keep theirs)."""


@dataclass
class ImportResult:
    """What a write did: records created and updated, and invalid rows skipped."""

    kind: str
    created: int = 0
    updated: int = 0
    skipped: list[RowError] = field(default_factory=list)


def active_texts(sessions: sessionmaker[Session], side: Side) -> list[tuple[int, str]]:
    """(id, text) of every active record of a side: what its indexes hold."""
    with sessions() as session:
        return [(r.id, repo.text_of(side, r)) for r in repo.active_records(session, side)]


def text_source(sessions: sessionmaker[Session], side: Side) -> Callable[[], list[tuple[int, str]]]:
    """The source a collection index reads to build, verify and repair itself."""
    return partial(active_texts, sessions, Side(side))


@dataclass(frozen=True)
class StoredRecord:
    """A stored need or technology with the text it is embedded and searched by."""

    row: Any
    text: str


class Catalog:
    """The stored records: validated writes that keep the indexes in step, and views."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        taxonomy: Taxonomy,
        indexes: Mapping[str, CollectionIndex],
        multilingual_indexes: Mapping[str, CollectionIndex],
        scratch: Scratch | None = None,
    ) -> None:
        self.sessions = sessions
        self.taxonomy = taxonomy
        self.indexes = indexes
        self.multilingual_indexes = multilingual_indexes
        # One writer at a time, and a view is built once: a re-entrant lock (a write may read).
        self.lock = threading.RLock()
        # The indexes change one write at a time, in the order of what the store holds.
        self.index_lock = threading.Lock()
        self.own_changes: set[int] = set()  # own writes' change-log entries, once indexed
        # Save each index on every write; off when a ChangeFollower checkpoints them instead.
        self.autosave, self.unsaved = True, set[Side]()
        self._views: dict[str, CollectionView] = {}
        # Where the views' lexical indexes live on disk (None: in memory).
        self.scratch = scratch
        self.inferrer = DomainInferrer(self)  # domain codes of records saved without any

    # -- reading -------------------------------------------------------------------------
    def view(self, collection: str) -> CollectionView:
        """The active records of a collection in memory with their BM25 index (built on the
        first query, then updated by each write for the records it changed).

        Ranking reads rows and texts from here, so a query touches no database.
        """
        side = Side(collection)
        with self.lock:
            if side not in self._views:
                rows: dict[int, Any] = {}

                def documents() -> Iterator[tuple[int, str]]:
                    with self.sessions() as session:
                        for row in repo.iter_active_records(session, side):
                            rows[row.id] = ViewRecord.of(row)
                            yield row.id, repo.text_of(side, row)

                path = None if self.scratch is None else self.scratch.directory(side.value)
                lexical = LexicalIndex(path=path, documents=documents())
                self._views[side] = CollectionView(
                    lexical=lexical,
                    rows=rows,
                    language_counts=Counter(language(r) for r in rows.values()),
                )
            return self._views[side]

    def close(self) -> None:
        """Drop the views and remove their files on disk (a later query rebuilds a view)."""
        with self.lock:
            self._views.clear()
            if self.scratch is not None:
                self.scratch.remove()

    def lexical(self, collection: str) -> LexicalIndex:
        """BM25 over a collection's active records."""
        return self.view(collection).lexical

    def language_space(self, collection: str) -> LanguageSpace | None:
        """The collection's records in the multilingual space, grouped by language (None when
        the multilingual space is off). Built on the first query that needs it after a write."""
        companion = self.multilingual_indexes.get(collection)
        if companion is None:
            return None
        view = self.view(collection)
        with self.lock:
            if "space" not in view.spaces:
                languages = {i: language(r) for i, r in view.rows.items()}
                view.spaces["space"] = LanguageSpace.build(
                    languages, companion.index, self.indexes[collection].index
                )
            return view.spaces["space"]

    def stored(self, side: Side, key: str | int) -> StoredRecord:
        """A stored need or technology (archived ones too) by reference or id, with its text.

        Raises:
            NotFoundError: there is none.
        """
        side = Side(side)
        with self.sessions() as session:
            row = repo.get_by_ref_or_id(session, repo.row_model(side), key)
        if row is None:
            raise NotFoundError(f"no {side.singular} with id {key!r}")
        return StoredRecord(row, repo.text_of(side, row))

    # -- writing -------------------------------------------------------------------------
    def save_records(
        self,
        kind: str,
        records: Sequence[BaseModel],
        *,
        before_commit: Callable[[Session, list[Any]], None] | None = None,
        new_only: bool = False,
    ) -> ImportResult:
        """Upsert validated records in one transaction, then index what changed.

        The texts are embedded before the transaction, with no lock held; the write lock is
        held for the transaction only. ``before_commit(session, rows)`` runs inside that
        transaction with the technology and need rows written (flushed, ids known): what it
        writes commits with them or not at all. ``new_only`` refuses a record whose reference
        is stored (RecordExistsError, nothing written) instead of updating it; another process
        storing it meanwhile is caught by the write itself (the reference is unique). A record
        without domain codes gets them inferred first (``matcher.infer``).
        """
        records = self.inferrer.fill(kind, records)
        self.embed_ahead(kind, records)
        result = ImportResult(kind=kind)
        changed: list[Any] = []
        try:
            with self.lock, transaction(self.sessions) as session:
                for record in records:
                    side, row, created = self._save_one(session, record)
                    if new_only and not created:
                        raise self._taken(side, getattr(record, "id", ""))
                    result.created += created
                    result.updated += not created
                    if side is not None:
                        changed.append(row)
                session.flush()
                if before_commit is not None:
                    before_commit(session, changed)
                changed_ids = [row.id for row in changed]
                logged = changes.log(session, kind, changed_ids)
        except IntegrityError as exc:
            if new_only and len(records) == 1 and self._ref_stored(kind, records[0]):
                raise self._taken(Side(kind), getattr(records[0], "id", "")) from exc
            raise
        if kind in self.indexes and changed_ids:
            self.reindex(Side(kind), changed_ids)
        self.own_changes.update(logged)  # applied here: the follower may pass them now
        return result

    def embed_ahead(self, kind: str, records: Sequence[BaseModel]) -> None:
        """Embed the texts of records about to be written into the cache of every space their
        collection is indexed in, with no lock held (the index update then only reads it)."""
        if kind not in self.indexes:
            return
        side = Side(kind)
        texts = [repo.text_of(side, r) for r in records if isinstance(r, TechnologyIn | NeedIn)]
        if texts:
            for index in (self.indexes[kind], *self.indexes[kind].companions):
                index.embed(texts)

    def reindex(self, side: Side, ids: Sequence[int]) -> None:
        """Bring a collection's indexes up to date for these records, from what the store
        holds now: active records (re)indexed, archived ones removed. Two writes of one record
        that finish out of order leave the index with the stored version, whichever it is."""
        with self.index_lock:
            with self.sessions() as session:
                rows = repo.rows_by_ids(session, repo.row_model(side), ids)
                stored = {i: row for i, row in rows.items() if row.status != repo.ARCHIVED}
                records = {i: ViewRecord.of(row) for i, row in stored.items()}
                active = [(i, repo.text_of(side, row)) for i, row in stored.items()]
            gone = [i for i in ids if i not in records]
            if active:
                self.indexes[side].upsert(active, save=self.autosave)
            if gone:
                self.indexes[side].remove(gone, save=self.autosave)
            self.unsaved |= set() if self.autosave else {side}
            view = self._views.get(side)
            if view is not None:  # the view follows: the lexical index and rows of these ids
                if active:
                    view.lexical.upsert(active)
                if gone:
                    view.lexical.remove(gone)
                with self.lock:  # a multilingual space may be reading the rows
                    for i in records:
                        view.put(i, records[i])
                    for i in gone:
                        view.put(i, None)

    @staticmethod
    def _taken(side: Side | None, ref: object) -> RecordExistsError:
        what = side.singular if side is not None else "broker"
        return RecordExistsError(f"a {what} with id {str(ref)!r} already exists")

    def _ref_stored(self, kind: str, record: BaseModel) -> bool:
        if kind not in (Side.technologies.value, Side.needs.value):
            return False
        with self.sessions() as session:
            return repo.ref_taken(session, side=Side(kind), ref=str(getattr(record, "id", "")))

    def create(
        self,
        side: Side,
        record: TechnologyIn | NeedIn,
        *,
        before_commit: Callable[[Session, list[Any]], None] | None = None,
    ) -> ImportResult:
        """Store a new record, refusing a reference already taken (archived records included).

        The refusal is decided inside the write's transaction (under the write lock, and by
        the store's unique reference across processes), so two creations of one reference
        cannot both pass; the encoder runs before, with no lock held.

        Raises:
            RecordExistsError: the reference is taken.
        """
        side = Side(side)
        with self.sessions() as session:
            if repo.ref_taken(session, side=side, ref=str(record.id)):
                raise self._taken(side, record.id)  # early, before the encoder runs
        return self.save_records(side.value, [record], before_commit=before_commit, new_only=True)

    @staticmethod
    def _save_one(session: Session, record: BaseModel) -> tuple[Side | None, Any, bool]:
        """Upsert one record: (its side, None for a broker; the row; whether it was created)."""
        if isinstance(record, TechnologyIn | NeedIn):
            side = Side.technologies if isinstance(record, TechnologyIn) else Side.needs
            text = repo.text_of(side, record)
            written = record.language.value if record.language else detect_language(text)
            upsert = repo.upsert_technology if side is Side.technologies else repo.upsert_need
            row, created = upsert(
                session,
                record=record,  # type: ignore[arg-type]
                language=written,
                content_hash=content_hash(text),
            )
            return side, row, created
        if isinstance(record, BrokerIn):
            _, created = repo.upsert_broker(session, record=record)
            return None, None, created
        raise TypeError(f"cannot store {type(record).__name__}")

    def import_file(self, path: Path, kind: str, *, skip_invalid: bool = False) -> ImportResult:
        """Validate a whole file, then write it; any bad row rejects it unless ``skip_invalid``."""
        batch: ImportBatch = read_file(Path(path), kind, self.taxonomy)
        if batch.errors and not skip_invalid:
            raise ImportRejectedError(batch.errors)
        result = self.save_records(kind, [record for _, record in batch.records])
        result.skipped = batch.errors
        return result

    def archive(
        self,
        kind: str,
        key: str | int,
        *,
        before_commit: Callable[[Session, list[Any]], None] | None = None,
    ) -> None:
        """Archive a technology or need: kept in the store, gone from search.

        ``before_commit(session, [row])`` runs inside the transaction (an audit entry, say).
        """
        side = Side(kind)
        with self.lock, transaction(self.sessions) as session:
            row = repo.get_by_ref_or_id(session, repo.row_model(side), key)
            if row is None:
                raise NotFoundError(f"no {side.singular} with id {key!r}")
            row.status = repo.ARCHIVED
            row_id = row.id
            if before_commit is not None:
                before_commit(session, [row])
            logged = changes.log(session, side.value, [row_id])
        self.reindex(side, [row_id])
        self.own_changes.update(logged)

    def load_demo(self, directory: Path) -> dict[str, ImportResult]:
        """Import a demo data set (idempotent) and bring the indexes up to date."""
        results = {
            kind: self.import_file(directory / f"{kind}.jsonl", kind)
            for kind in ("technologies", "needs", "brokers")
        }
        for index in self.indexes.values():
            index.repair()
        return results
