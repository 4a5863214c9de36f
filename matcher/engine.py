"""The engine facade: ingest into the store, keep indexes in sync, match both ways."""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from matcher import deal
from matcher.config import Settings, get_settings
from matcher.domain import BrokerIn, Match, NeedIn, TechnologyIn
from matcher.embed import Encoder, content_hash, encode_queries, get_encoder
from matcher.errors import InvalidInputError, NotFoundError
from matcher.index.collection import CollectionIndex
from matcher.ingest import ImportBatch, RowError, detect_language, read_file
from matcher.pipeline import Matcher
from matcher.retrieve.crosslingual import LanguageSpace
from matcher.retrieve.lexical import LexicalIndex
from matcher.route import RoutingRules, RoutingState
from matcher.routing import RoutingOutcome, route_need, take_back_lapsed
from matcher.store import repo
from matcher.store.db import make_engine, migrate, session_factory, transaction
from matcher.store.models import BrokerRow, NeedRow, TechnologyRow
from matcher.store.repo import deals
from matcher.store.repo import routing as routes
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

    # -- routing and deals ---------------------------------------------------------------
    # (owned by the routing workflow: matcher.route's rules, matcher.routing, matcher.deal)
    @property
    def routing_rules(self) -> RoutingRules:
        """The routing rules of the settings (``MATCHER_ROUTE_*``)."""
        r = self.settings.route
        return RoutingRules(
            cross_border_min_level=r.cross_border_min_level,
            large_budget_cny=r.large_budget_cny,
            large_budget_min_level=r.large_budget_min_level,
            matches_per_need=r.matches_per_need,
            min_score=r.min_score,
        )

    def match_and_route(self, key: str | int, *, today: date | None = None) -> RoutingOutcome:
        """Rank technologies for a stored need and route the best to certified brokers.

        The need's routing state records the outcome; a need nobody can take is ``unrouted``
        with the reason, and is routed again when a broker frees capacity or is (re)certified.
        """
        today = today or date.today()
        rules = self.routing_rules
        matches = self.match_need(key, top=max(10, rules.matches_per_need))
        with transaction(self.sessions) as session:
            need = repo.get_by_ref_or_id(session, NeedRow, key)
            if need is None:
                raise NotFoundError(f"no need with id {key!r}")
            return route_need(session, need, matches, today=today, tax=self.taxonomy, rules=rules)

    def route_unrouted(self, *, today: date | None = None) -> list[RoutingOutcome]:
        """Take matches back from suspended and expired brokers, then route again every need
        holding such matches and every need nobody could take so far."""
        today = today or date.today()
        with transaction(self.sessions) as session:
            returned = take_back_lapsed(session, today=today, tax=self.taxonomy)
            waiting = routes.needs_with_returned(session)
            unrouted = [n.id for n in routes.needs_in_state(session, RoutingState.unrouted)]
        outcomes = []
        for need_id in dict.fromkeys([*returned, *waiting, *unrouted]):
            outcomes.append(self.match_and_route(need_id, today=today))
        return outcomes

    def unrouted_needs(self, *, limit: int = 100, offset: int = 0) -> tuple[int, list[Any]]:
        """Needs nobody could take (total, page), each with its reason in every language."""
        with self.sessions() as session:
            total = routes.count_in_state(session, RoutingState.unrouted)
            rows = routes.needs_in_state(session, RoutingState.unrouted, limit=limit, offset=offset)
            return total, [record_of(r) for r in rows]

    def broker(self, key: str | int) -> Any:
        """A broker's stored record (detached) by reference or id."""
        with self.sessions() as session:
            row = repo.get_by_ref_or_id(session, BrokerRow, key)
            if row is None:
                raise NotFoundError(f"no broker {key!r}")
            return record_of(row)

    def set_broker_status(
        self,
        key: str | int,
        *,
        suspended: bool | None = None,
        valid_until: date | None = None,
        level: str | None = None,
        today: date | None = None,
        reroute: bool = True,
    ) -> Any:
        """Suspend, reinstate or renew a broker; matches then move to where they can be worked.

        A suspended broker's unclaimed matches go back to routing; a reinstated or renewed one
        can take needs nobody could take before. A renewal to a past date is refused.
        ``reroute=False`` leaves that to the caller (the service's worker runs
        ``route_unrouted``).
        """
        today = today or date.today()
        if valid_until is not None and valid_until < today:
            raise InvalidInputError(
                f"valid_until: {valid_until.isoformat()} is in the past; a renewal must "
                f"run to today ({today.isoformat()}) or later"
            )
        with transaction(self.sessions) as session:
            row = repo.get_by_ref_or_id(session, BrokerRow, key)
            if row is None:
                raise NotFoundError(f"no broker {key!r}")
            if suspended is not None:
                row.suspended = suspended
            if valid_until is not None:
                row.valid_until = valid_until
            if level is not None:
                row.level = level
        if reroute:
            self.route_unrouted(today=today)
        return self.broker(key)

    def claim(self, broker_id: int, routed_id: int, *, actor: str) -> int:
        """Take an inbox item on as a deal; the new deal's id."""
        with transaction(self.sessions) as session:
            item, broker = self._own_item(session, broker_id, routed_id)
            return deal.claim(session, item, broker, actor=actor, today=date.today()).id

    def change_stage(
        self,
        deal_id: int,
        *,
        to: str,
        actor: str,
        broker_id: int | None = None,
        note: str | None = None,
        reason: str | None = None,
        reroute: bool = True,
    ) -> bool:
        """Move a deal (a broker's own, or any for ``broker_id=None``); whether it ended.

        An agreed deal closes its need for routing; an ended deal frees the broker's capacity,
        so needs nobody could take are routed again.
        """
        with transaction(self.sessions) as session:
            row = deals.deal(session, deal_id)
            if row is None or (broker_id is not None and row.broker_id != broker_id):
                raise NotFoundError(f"no deal {deal_id} among your deals")
            before = row.stage
            deal.change_stage(session, row, to=to, actor=actor, note=note, reason=reason)
            if to == "agreed":
                need = session.get(NeedRow, row.need_id)
                if need is not None:
                    routes.set_routing_state(need, RoutingState.closed, need.routing_reason)
        ended = deal.frees_capacity(before, to)
        if ended and reroute:
            self.route_unrouted()
        return ended

    def feedback(
        self,
        broker_id: int,
        routed_id: int,
        *,
        decision: str,
        reason_code: str | None = None,
        comment: str | None = None,
        reroute: bool = True,
    ) -> tuple[Any, str, bool]:
        """A broker's verdict on their inbox item: (feedback row, item state, stored now)."""
        with transaction(self.sessions) as session:
            item, broker = self._own_item(session, broker_id, routed_id)
            result = deal.feedback(
                session, item, broker, decision=decision, reason_code=reason_code, comment=comment
            )
            out = (record_of(result.row), item.state, result.created)
        if decision == "decline" and out[2] and reroute:
            self.route_unrouted()
        return out

    @staticmethod
    def _own_item(session: Session, broker_id: int, routed_id: int) -> tuple[Any, Any]:
        item = deals.routed(session, routed_id)
        broker = session.get(BrokerRow, broker_id)
        if item is None or broker is None or item.broker_id != broker_id:
            raise NotFoundError(f"no inbox item {routed_id} in your inbox")
        return item, broker
