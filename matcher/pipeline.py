"""Matching both ways: retrieve candidates, apply hard filters, score and explain them.

The ``Matcher`` is handed its collaborators (the catalogue's views, the collection indexes, the
encoders, the taxonomy, the settings, the feature memo, the ranker in use); it knows no engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from matcher import ENGINE_VERSION
from matcher.catalog import Catalog
from matcher.config import Settings
from matcher.domain import Match, Side
from matcher.embed import Encoders
from matcher.errors import InvalidInputError
from matcher.index.collection import CollectionIndex
from matcher.infer import note_inferred
from matcher.ingest import detect_language
from matcher.phrases import LANGUAGES, language_of
from matcher.rank.explain import explanations, match_of
from matcher.rank.learned.model import LearnedRanker
from matcher.rank.pair import Query, TextOffer, has_hard_filters, passes
from matcher.rank.score import (
    CandidateFeatures,
    FeatureCache,
    Observer,
    Retrieved,
    candidate_features,
    score_candidates,
)
from matcher.retrieve.crosslingual import CrossLingualQuery, LanguageSpace, needs_multilingual
from matcher.retrieve.hybrid import hybrid_candidates
from matcher.retrieve.lexical import words
from matcher.store import repo
from matcher.store.db import transaction
from matcher.store.models import MatchRow, NeedRow, TechnologyRow
from matcher.taxonomy import Taxonomy

__all__ = [
    "InvalidQueryError",
    "Matcher",
    "TextOffer",
    "candidate_features",
    "query_language",
]


class InvalidQueryError(InvalidInputError):
    """A free-text query with filters the reference data does not know."""


def query_language(query: Any, text: str) -> str:
    """The language a query is written in: a stored record's own, else detected from its text."""
    return getattr(query, "language", None) or detect_language(text)


class Matcher:
    """Turns a need, a technology or a free-text query into ranked, explained matches."""

    def __init__(
        self,
        *,
        settings: Settings,
        taxonomy: Taxonomy,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        indexes: Mapping[str, CollectionIndex],
        multilingual_indexes: Mapping[str, CollectionIndex],
        encoders: Encoders,
        feature_memo: dict[tuple[Any, ...], Any],
        ranker: Callable[[], LearnedRanker | None],
    ) -> None:
        """Args:
        feature_memo: metadata features by the values they depend on, shared by queries.
        ranker: the promoted learned ranker, asked at each query (None: the fixed weights).
        """
        self.settings, self.taxonomy, self.sessions = settings, taxonomy, sessions
        self.catalog, self.encoders = catalog, encoders
        self.indexes, self.multilingual_indexes = indexes, multilingual_indexes
        self.feature_memo = feature_memo
        self.ranker = ranker

    # -- entry points --------------------------------------------------------------------
    def for_need(
        self,
        key: str | int,
        *,
        top: int = 10,
        persist: bool = True,
        exclude: frozenset[int] = frozenset(),
    ) -> list[Match]:
        """Technologies for a stored need (its stored vector is reused, not re-embedded).

        ``exclude``: technology ids left out of the search (benchmarks remove a pool's copies).
        """
        need, text, vector = self.stored(Side.needs, key)
        matches = self.rank(
            query=need,
            query_text=text,
            query_vector=vector,
            target=Side.technologies,
            top=top,
            lang=need.language,
            exclude=exclude,
        )
        for m in matches:
            m.need_id, m.need_ref = need.id, need.ref
        if persist:
            self._persist(need.id, matches)
        return matches

    def for_technology(self, key: str | int, *, top: int = 10) -> list[Match]:
        """Needs for a stored technology (matching the other way round)."""
        tech, text, vector = self.stored(Side.technologies, key)
        matches = self.rank(
            query=tech,
            query_text=text,
            query_vector=vector,
            target=Side.needs,
            top=top,
            lang=tech.language,
        )
        for m in matches:
            m.technology_id, m.technology_ref = tech.id, tech.ref
        return matches

    def need_features(self, key: str | int) -> CandidateFeatures:
        """The candidates of a stored need as serving ranks them, with their feature rows
        (training and the feedback simulation read judged pairs' features here)."""
        need, text, vector = self.stored(Side.needs, key)
        seen: list[CandidateFeatures] = []
        self.rank(
            query=need,
            query_text=text,
            query_vector=vector,
            target=Side.technologies,
            top=1,
            lang=need.language,
            observe=lambda ids, matrix: seen.append(CandidateFeatures(list(ids), matrix)),
        )
        return seen[0] if seen else CandidateFeatures([], np.zeros((0, 0)))

    def stored(self, side: Side, key: str | int) -> tuple[Any, str, np.ndarray]:
        """A stored need or technology, its text and its indexed vector."""
        record = self.catalog.stored(side, key)
        vector = self.indexes[side].vector_of(record.row.id, record.text)
        return record.row, record.text, vector

    def for_text(
        self,
        text: str,
        *,
        domains: Sequence[str] = (),
        min_trl: int | None = None,
        max_trl: int | None = None,
        region: str | None = None,
        scope: str = "international",
        hard: bool = False,
        top: int = 10,
        lang: str = "en",
        target: str = "technologies",
    ) -> list[Match]:
        """Technologies (or needs) for free text.

        For technologies the filters act as a need's TRL window and home region; for needs the
        text is an offer: ``min_trl`` (or ``max_trl``) is its TRL and ``region`` where it is.
        """
        self._check_query(text, domains, min_trl, max_trl, region, scope)
        query: Query | TextOffer
        if Side(target) is Side.needs:
            query = TextOffer(
                domains=list(domains), trl=min_trl or max_trl, region=region, hard=hard
            )
        else:
            query = Query(
                domains=list(domains),
                trl_min=min_trl,
                trl_max=max_trl,
                trl_hard=hard,
                region_scope=scope,
                home_region=region,
                region_hard=hard and region is not None,
            )
        # A free-text answer is read once, in one language: the others are not written.
        return self.rank(
            query=query,
            query_text=text,
            query_vector=self.encoders.query(text),
            target=Side(target),
            top=top,
            lang=lang,
            languages=(language_of(lang),),
        )

    def _check_query(
        self,
        text: str,
        domains: Sequence[str],
        min_trl: int | None,
        max_trl: int | None,
        region: str | None,
        scope: str,
    ) -> None:
        """Refuse a free-text query the reference data cannot interpret, saying what to fix."""
        tax = self.taxonomy
        if not text.strip():
            raise InvalidQueryError("text: the query text is empty")
        unknown = [d for d in domains if d not in tax.domains]
        if unknown:
            raise InvalidQueryError(
                f"domains: unknown domain code(s): {', '.join(unknown)} "
                "(see data/taxonomy/domains.json)"
            )
        if min_trl is not None and max_trl is not None and max_trl < min_trl:
            raise InvalidQueryError(f"trl_max ({max_trl}) is below trl_min ({min_trl})")
        if region is not None and not tax.is_region(region):
            raise InvalidQueryError(
                f"region: unknown region code {region!r}; "
                "use ISO 3166 codes such as CN-SH, DE or US-CA"
            )
        if scope not in ("local", "national", "international"):
            raise InvalidQueryError("scope: must be local, national or international")

    # -- the pipeline --------------------------------------------------------------------
    def crosslingual_query(
        self,
        query: Any,
        query_text: str,
        query_vector: np.ndarray,
        target: str,
        language: str | None = None,
    ) -> tuple[LanguageSpace, CrossLingualQuery] | None:
        """The multilingual side of a query, or None when it and the target are all English.

        A stored need or technology reuses its indexed multilingual vector; free text is
        embedded (an English query over English records never pays for this).
        """
        if target not in self.multilingual_indexes:
            return None
        language = language or query_language(query, query_text)
        if not needs_multilingual(language, self.catalog.view(target).languages):
            return None
        space = self.catalog.language_space(target)
        if space is None:
            return None
        if isinstance(query, NeedRow | TechnologyRow):
            source = Side.needs if isinstance(query, NeedRow) else Side.technologies
            vector = self.multilingual_indexes[source].vector_of(query.id, query_text)
        elif self.encoders.shared:  # one model in both spaces
            vector = query_vector
        else:
            vector = self.encoders.query_multilingual(query_text)
        return space, CrossLingualQuery(
            language=language,
            vector=vector,
            primary_vector=query_vector,
            calibrate=self.settings.language_calibration,
        )

    def rank(
        self,
        *,
        query: Any,
        query_text: str,
        query_vector: np.ndarray,
        target: Side,
        top: int,
        lang: str = "en",
        observe: Observer | None = None,
        exclude: frozenset[int] = frozenset(),
        languages: Sequence[str] = LANGUAGES,
    ) -> list[Match]:
        """Candidates, hard filters, scores and explanations of one query.

        ``observe``, when given, receives the candidates' ids and feature rows (training reads
        the features of judged pairs through it, so they are the ones serving computes).
        ``languages``: the languages the explanations are written in (stored and routed
        matches keep every language; a free-text answer needs only its reader's).
        """
        target = Side(target)
        language = query_language(query, query_text)
        kept = self._retrieve(query, query_text, query_vector, target, top, exclude, language)
        view = self.catalog.view(target)
        scored = score_candidates(
            kept,
            features=FeatureCache(
                self.feature_memo,
                taxonomy=self.taxonomy,
                distance_scale_km=self.settings.distance_scale_km,
                query=query,
                target=target,
                lang=lang,
            ),
            query_text=query_text,
            query_lang=language,
            doc_terms=view.lexical.doc_terms,
            weights=self.settings.weights,
            # The learned ranker ranks technologies for needs and texts (what brokers judge).
            ranker=self.ranker if target is Side.technologies else _no_ranker,
            top=top,
            lang=lang,
            observe=observe,
        )
        scored.sort(key=lambda item: (-item.score, item.id))
        # Only what is shown gets a Match and an explanation (shared words need the texts).
        shown = scored[:top]
        evidence = view.lexical.shared_words(words(query_text), [item.id for item in shown])
        return [
            match_of(
                item,
                target,
                rank=rank,
                lang=lang,
                explained=note_inferred(
                    explanations(
                        query,
                        item,
                        target,
                        evidence[item.row.id],
                        taxonomy=self.taxonomy,
                        distance_scale_km=self.settings.distance_scale_km,
                        languages=languages,
                        ranked_in=lang,
                    ),
                    query,
                    item.row,
                    target,
                ),
            )
            for rank, item in enumerate(shown, start=1)
        ]

    def _retrieve(
        self,
        query: Any,
        query_text: str,
        query_vector: np.ndarray,
        target: Side,
        top: int,
        exclude: frozenset[int],
        language: str,
    ) -> list[Retrieved]:
        """Hybrid candidates that pass the hard filters; the net widens until ``top`` pass."""
        dense = self.indexes[target].index
        view = self.catalog.view(target)
        k = max(self.settings.candidates, top)
        crosslingual = self.crosslingual_query(query, query_text, query_vector, target, language)
        # Technologies for a need or text without hard filters: nothing to check per row.
        filtered = target is not Side.technologies or has_hard_filters(query)
        while True:
            candidates = hybrid_candidates(
                query_vector=query_vector,
                query_text=query_text,
                dense=dense,
                lexical=view.lexical,
                k=k,
                rrf_k=self.settings.rrf_k,
                exclude=exclude,
                crosslingual=crosslingual,
            )
            rows = view.rows
            found = [Retrieved(c, row) for c in candidates if (row := rows.get(c.id)) is not None]
            kept = (
                [r for r in found if passes(query, r.row, target, self.taxonomy)]
                if filtered
                else found
            )
            # Hard filters may empty the candidate list: widen the net until enough survive.
            if len(kept) >= top or k >= len(dense):
                return kept
            k *= 4

    def _persist(self, need_id: int, matches: Sequence[Match]) -> None:
        rows = [
            MatchRow(
                need_id=need_id,
                technology_id=m.technology_id,
                score=m.score,
                components=m.components.as_dict(),
                explanation=m.explanations.get("en", m.explanation),
                explanations=m.explanations or None,
                rank=m.rank,
                engine_version=ENGINE_VERSION,
            )
            for m in matches
        ]
        with transaction(self.sessions) as session:
            repo.replace_matches(session, need_id=need_id, matches=rows)


def _no_ranker() -> None:
    """Needs for a technology keep the fixed weights."""
    return None
