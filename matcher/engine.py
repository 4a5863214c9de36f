"""The engine facade: one object the CLI, the API, workers and benchmarks share.

It wires the parts together (store, encoders, indexes, catalogue, matcher) and delegates:
writes and views to ``matcher.catalog``, matching to ``matcher.pipeline``, routing and deals to
``matcher.route``, ``matcher.routing`` and ``matcher.deal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from matcher import competency, deal, intake
from matcher.catalog import (
    BeforeCommit,
    Catalog,
    CollectionView,
    ImportRejectedError,
    ImportResult,
    RecordExistsError,
    text_source,
)
from matcher.config import Settings, get_settings
from matcher.domain import Match, NeedIn, Side, TechnologyIn
from matcher.embed import Encoder, Encoders
from matcher.errors import InvalidInputError, NotFoundError
from matcher.index.collection import CollectionIndex
from matcher.index.owner import claim
from matcher.ingest import intended_answers
from matcher.pipeline import Matcher
from matcher.rank.learned.registry import active_ranker
from matcher.rank.score import CandidateFeatures
from matcher.retrieve.bm25 import LexicalIndex
from matcher.retrieve.crosslingual import LanguageSpace
from matcher.retrieve.scratch import Scratch
from matcher.retrieve.view import Record, record_of
from matcher.route import RoutingRules, RoutingState
from matcher.routing import RoutingOutcome, route_need, take_back_lapsed
from matcher.store import repo
from matcher.store.db import make_engine, migrate, session_factory, transaction
from matcher.store.models import BrokerRow, NeedRow
from matcher.store.repo import deals
from matcher.store.repo import routing as routes
from matcher.taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "CollectionView",
    "Engine",
    "ImportRejectedError",
    "ImportResult",
    "NotFoundError",
    "Record",
    "RecordExistsError",
    "record_of",
]


class Engine:
    """Store + encoders + indexes + catalogue + matcher, shared by the CLI, the API and the
    benchmarks."""

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
        s = self.settings
        self.encoders = Encoders(
            model=s.model,
            model_id=s.encoder_id,
            batch_size=s.batch_size,
            backend=s.encoder_backend,
            models_dir=s.models_dir,
            multilingual_model=s.multilingual_model if s.multilingual_enabled else None,
            encoder=encoder,
            multilingual_encoder=multilingual_encoder,
        )
        self.cache = repo.SqlEmbeddingCache(self.sessions)
        self.indexes: dict[str, CollectionIndex] = {}
        # The same records in the multilingual space (Chinese and cross-language pairs), a
        # companion of each index so that writes, verify and repair cover it.
        self.multilingual_indexes: dict[str, CollectionIndex] = {}
        for side in Side:
            source = text_source(self.sessions, side)
            self.indexes[side] = CollectionIndex(
                side.value,
                settings=s,
                encoder=lambda: self.encoders.primary,
                cache=self.cache,
                source=source,
                encoder_id=self.encoders.primary_id,
            )
            if s.multilingual_enabled:
                companion = CollectionIndex(
                    side.value,
                    settings=s,
                    encoder=lambda: self.encoders.multilingual,
                    cache=self.cache,
                    source=source,
                    encoder_id=self.encoders.multilingual_id,
                    directory=s.index_dir / f"{side.value}.multilingual",
                    label="multilingual",
                )
                self.indexes[side].companions.append(companion)
                self.multilingual_indexes[side] = companion
        self.files = claim(s.index_dir, self.indexes.values())  # who writes the index files
        self.catalog = Catalog(
            sessions=self.sessions,
            taxonomy=self.taxonomy,
            indexes=self.indexes,
            multilingual_indexes=self.multilingual_indexes,
            scratch=Scratch(s.scratch_dir),
        )
        # Domain, readiness and region features by the values they depend on (rank.score).
        self.feature_memo: dict[tuple[Any, ...], Any] = {}
        self.matcher = Matcher(
            settings=s,
            taxonomy=self.taxonomy,
            sessions=self.sessions,
            catalog=self.catalog,
            indexes=self.indexes,
            multilingual_indexes=self.multilingual_indexes,
            encoders=self.encoders,
            feature_memo=self.feature_memo,
            ranker=partial(active_ranker, s),
        )

    @property
    def encoder(self) -> Encoder:
        """The embedding model, loaded on first use."""
        return self.encoders.primary

    @property
    def multilingual_encoder(self) -> Encoder:
        """The multilingual model (``MATCHER_MULTILINGUAL_MODEL``), loaded on first use."""
        return self.encoders.multilingual

    def use_encoder(self, encoder: Encoder) -> None:
        """Embed queries from now on with another encoder of the same model (a benchmark
        compares backends this way); the indexed vectors stay as they were built."""
        self.encoders.use_primary(encoder)

    def close(self) -> None:
        """Release database connections and the index directory's lock."""
        self.db.dispose()
        self.files.release()
        self.catalog.close()

    def submit(self, record: Mapping[str, Any], *, side: Side) -> intake.Submission:
        """Validate, store and link a new record to a tracking token in one transaction
        (``matcher.intake.submit``: RecordInvalidError, RecordExistsError)."""
        return intake.submit(side, record, self.catalog)

    # -- the catalogue (delegated) -------------------------------------------------------
    def view(self, collection: str) -> CollectionView:
        """The active records of a collection in memory with their BM25 index (kept up to date
        by the writes).

        Ranking reads rows and texts from here, so a query touches no database.
        """
        return self.catalog.view(collection)

    def lexical(self, collection: str) -> LexicalIndex:
        """BM25 over a collection's active records."""
        return self.catalog.lexical(collection)

    def language_space(self, collection: str) -> LanguageSpace | None:
        """The collection's records in the multilingual space, grouped by language (None when
        the multilingual space is off)."""
        return self.catalog.language_space(collection)

    def save_records(
        self, kind: str, records: Sequence[BaseModel], *, before_commit: BeforeCommit | None = None
    ) -> ImportResult:
        """Upsert validated records in one transaction, then index what changed."""
        return self.catalog.save_records(kind, records, before_commit=before_commit)

    def create_record(
        self,
        side: Side,
        record: TechnologyIn | NeedIn,
        *,
        before_commit: BeforeCommit | None = None,
    ) -> ImportResult:
        """Store a new technology or need; ``RecordExistsError`` when its reference is taken."""
        return self.catalog.create(side, record, before_commit=before_commit)

    def import_file(self, path: Path, kind: str, *, skip_invalid: bool = False) -> ImportResult:
        """Validate a whole file, then write it; any bad row rejects it unless ``skip_invalid``."""
        return self.catalog.import_file(path, kind, skip_invalid=skip_invalid)

    def archive(
        self, kind: str, key: str | int, *, before_commit: BeforeCommit | None = None
    ) -> None:
        """Archive a technology or need: kept in the store, gone from search."""
        self.catalog.archive(kind, key, before_commit=before_commit)

    def load_demo(self) -> dict[str, ImportResult]:
        """Import the shipped demo data set (idempotent) and bring the indexes up to date."""
        return self.catalog.load_demo(self.settings.data_dir / "demo")

    def demo_intended(self) -> dict[str, dict[str, int]]:
        """Intended answers of the demo needs: need ref → {technology ref: grade}."""
        return intended_answers(self.settings.data_dir / "demo" / "intended.tsv")

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

    def need_features(self, key: str | int) -> CandidateFeatures:
        """A stored need's candidates as serving ranks them, with their feature rows."""
        return self.matcher.need_features(key)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector of an ad-hoc query text (never cached: queries are one-off)."""
        return self.encoders.query(text)

    def embed_query_multilingual(self, text: str) -> np.ndarray:
        """Vector of an ad-hoc query text in the multilingual space."""
        return self.encoders.query_multilingual(text)

    # -- routing and deals ---------------------------------------------------------------
    # (owned by the routing workflow: matcher.route's rules, matcher.routing, matcher.deal)
    @property
    def routing_rules(self) -> RoutingRules:
        """The routing rules of the settings (``MATCHER_ROUTE_*``)."""
        return RoutingRules.from_settings(self.settings.route)

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
        actor: str = "admin",
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
            competency.change_certificate(  # and its history
                session, row, suspended=suspended, valid_until=valid_until, level=level, actor=actor
            )
        if reroute:
            self.route_unrouted(today=today)
        return self.broker(key)

    def claim(self, broker_id: int, routed_id: int, *, actor: str) -> int:
        """Take an inbox item on as a deal; the new deal's id."""
        with transaction(self.sessions) as session:
            item, broker = deal.own_item(session, broker_id, routed_id)
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
            event = deal.change_stage(session, row, to=to, actor=actor, note=note, reason=reason)
            before = event.from_stage or ""
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
            item, broker = deal.own_item(session, broker_id, routed_id)
            result = deal.feedback(
                session, item, broker, decision=decision, reason_code=reason_code, comment=comment
            )
            out = (record_of(result.row), item.state, result.created)
        if decision == "decline" and out[2] and reroute:
            self.route_unrouted()
        return out
