"""Matching both ways: retrieve candidates, apply hard filters, score and explain them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher import ENGINE_VERSION
from matcher.domain import Components, Match
from matcher.rank import (
    Query,
    combine,
    domain_feature,
    explain,
    lexical_feature,
    passes_hard_filters,
    readiness_feature,
    region_feature,
    semantic_feature,
)
from matcher.retrieve import Candidate, hybrid_candidates, shared_terms
from matcher.store import repo
from matcher.store.models import MatchRow, NeedRow, TechnologyRow

if TYPE_CHECKING:
    from matcher.engine import Engine


class Matcher:
    """Turns a need, a technology or a free-text query into ranked, explained matches."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- entry points --------------------------------------------------------------------
    def for_need(self, key: str | int, *, top: int = 10, persist: bool = True) -> list[Match]:
        """Technologies for a stored need (its stored vector is reused, not re-embedded)."""
        need, text, vector = self._stored("needs", key)
        matches = self._rank(
            query=need,
            query_text=text,
            query_vector=vector,
            target="technologies",
            top=top,
            lang=need.language,
        )
        for m in matches:
            m.need_id, m.need_ref = need.id, need.ref
        if persist:
            self._persist(need.id, matches)
        return matches

    def for_technology(self, key: str | int, *, top: int = 10) -> list[Match]:
        """Needs for a stored technology (matching the other way round)."""
        tech, text, vector = self._stored("technologies", key)
        matches = self._rank(
            query=tech,
            query_text=text,
            query_vector=vector,
            target="needs",
            top=top,
            lang=tech.language,
        )
        for m in matches:
            m.technology_id, m.technology_ref = tech.id, tech.ref
        return matches

    def _stored(self, collection: str, key: str | int) -> tuple[Any, str, np.ndarray]:
        """A stored need or technology, its text and its indexed vector."""
        from matcher.engine import NotFoundError

        model = NeedRow if collection == "needs" else TechnologyRow
        with self.engine.sessions() as session:
            row = repo.get_by_ref_or_id(session, model, key)
        if row is None:
            raise NotFoundError(f"no {collection[:-1]} with id {key!r}")
        text = repo.need_text(row) if collection == "needs" else repo.technology_text(row)
        return row, text, self._stored_vector(collection, row.id, text)

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
    ) -> list[Match]:
        """Technologies for free text; the filters act as a need's window and home region."""
        if not text.strip():
            raise ValueError("the query text is empty")
        query = Query(
            domains=list(domains),
            trl_min=min_trl,
            trl_max=max_trl,
            trl_hard=hard,
            region_scope=scope,
            home_region=region,
            region_hard=hard and region is not None,
        )
        vector = self.engine.embed_query(text)
        return self._rank(
            query=query,
            query_text=text,
            query_vector=vector,
            target="technologies",
            top=top,
            lang=lang,
        )

    # -- internals -----------------------------------------------------------------------
    def _stored_vector(self, collection: str, doc_id: int, text: str) -> np.ndarray:
        index = self.engine.indexes[collection].index
        if doc_id in index:
            return index.vector(doc_id)
        return self.engine.indexes[collection]._embed([text])[0]

    def _rank(
        self,
        *,
        query: Any,
        query_text: str,
        query_vector: np.ndarray,
        target: str,
        top: int,
        lang: str = "en",
    ) -> list[Match]:
        engine = self.engine
        dense = engine.indexes[target].index
        lexical = engine.lexical(target)
        exclude: frozenset[int] = frozenset()
        k = max(engine.settings.candidates, top)
        model = TechnologyRow if target == "technologies" else NeedRow
        while True:
            candidates = hybrid_candidates(
                query_vector=query_vector,
                query_text=query_text,
                dense=dense,
                lexical=lexical,
                k=k,
                rrf_k=engine.settings.rrf_k,
                exclude=exclude,
            )
            with engine.sessions() as session:
                rows = repo.rows_by_ids(session, model, [c.id for c in candidates])
            kept = [
                (c, rows[c.id])
                for c in candidates
                if c.id in rows and self._passes(query, rows[c.id], target)
            ]
            # Hard filters may empty the candidate list: widen the net until enough survive.
            if len(kept) >= top or k >= len(dense):
                break
            k *= 4
        best_bm25 = max((c.bm25 for c, _ in kept), default=0.0)
        matches = [
            self._score(query, query_text, c, row, target, best_bm25, lang) for c, row in kept
        ]
        matches.sort(
            key=lambda m: (
                -m.score,
                m.technology_id if target == "technologies" else m.need_id or 0,
            )
        )
        for rank, match in enumerate(matches[:top], start=1):
            match.rank = rank
        return matches[:top]

    def _passes(self, query: Any, row: Any, target: str) -> bool:
        tax = self.engine.taxonomy
        if target == "technologies":
            return passes_hard_filters(query, row, tax)
        return passes_hard_filters(row, query, tax)

    def _score(
        self,
        query: Any,
        query_text: str,
        cand: Candidate,
        row: Any,
        target: str,
        best_bm25: float,
        lang: str,
    ) -> Match:
        engine = self.engine
        tax = engine.taxonomy
        need, tech = (query, row) if target == "technologies" else (row, query)
        domain = domain_feature(need, tech, tax, lang)
        readiness = readiness_feature(need, tech)
        region = region_feature(need, tech, tax, engine.settings.distance_scale_km, lang)
        components = Components(
            semantic=semantic_feature(cand.semantic),
            lexical=lexical_feature(cand.bm25, best_bm25),
            domain=domain.value,
            readiness=readiness.value,
            region=region.value,
        )
        row_text = repo.technology_text(row) if target == "technologies" else repo.need_text(row)
        terms = shared_terms(query_text, row_text)
        text_phrase = f"text fit {components.semantic:.2f}" + (
            f" (shared terms: {', '.join(terms)})" if terms else ""
        )
        match = Match(
            need_id=row.id if target == "needs" else None,
            technology_id=row.id if target == "technologies" else 0,
            score=combine(components, engine.settings.weights),
            components=components,
            explanation=explain([domain.phrase, readiness.phrase, region.phrase, text_phrase]),
            title=row.title,
        )
        if target == "technologies":
            match.technology_ref = row.ref
            match.details = {"owner": row.owner, "trl": row.trl, "region": row.region}
        else:
            match.need_ref = row.ref
            match.details = {"enterprise": row.enterprise, "home_region": row.home_region}
        return match

    def _persist(self, need_id: int, matches: Sequence[Match]) -> None:
        from matcher.store.db import transaction

        rows = [
            MatchRow(
                need_id=need_id,
                technology_id=m.technology_id,
                score=m.score,
                components=m.components.as_dict(),
                explanation=m.explanation,
                rank=m.rank,
                engine_version=ENGINE_VERSION,
            )
            for m in matches
        ]
        with transaction(self.engine.sessions) as session:
            repo.replace_matches(session, need_id=need_id, matches=rows)
