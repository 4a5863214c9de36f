"""Matching both ways: retrieve candidates, apply hard filters, score and explain them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher import ENGINE_VERSION
from matcher.domain import Components, Match
from matcher.errors import InvalidInputError
from matcher.ingest import detect_language
from matcher.phrases import LANGUAGES, join, language_of, phrase
from matcher.rank.features import (
    LearnedFeature,
    candidate_features,
    fixed_scores,
    learned_phrase,
    query_size,
)
from matcher.rank.learned.registry import active_ranker
from matcher.rank.pair import (
    UNKNOWN,
    Feature,
    Query,
    domain_feature,
    explain,
    has_hard_filters,
    passes_hard_filters,
    readiness_feature,
    region_feature,
)
from matcher.retrieve.crosslingual import CrossLingualQuery, LanguageSpace, needs_multilingual
from matcher.retrieve.hybrid import hybrid_candidates
from matcher.retrieve.lexical import words
from matcher.store import repo
from matcher.store.models import MatchRow, NeedRow, TechnologyRow
from matcher.taxonomy import Taxonomy

if TYPE_CHECKING:
    from matcher.engine import Engine


class InvalidQueryError(InvalidInputError):
    """A free-text query with filters the reference data does not know."""


@dataclass
class TextOffer:
    """A free-text technology offer searched against stored needs."""

    domains: list[str]
    trl: int | None = None
    region: str | None = None
    hard: bool = False

    def accepted_by(self, need: Any, tax: Taxonomy) -> bool:
        """Whether a need's hard filters (or all its windows, with ``hard``) let the offer in."""
        strict = Query(
            domains=list(need.domains),
            trl_min=need.trl_min,
            trl_max=need.trl_max,
            trl_hard=(need.trl_hard or self.hard) and self.trl is not None,
            region_scope=need.region_scope,
            home_region=need.home_region,
            region_hard=(need.region_hard or self.hard) and self.region is not None,
        )
        return passes_hard_filters(strict, self, tax)  # type: ignore[arg-type]


def query_language(query: Any, text: str) -> str:
    """The language a query is written in: a stored record's own, else detected from its text."""
    return getattr(query, "language", None) or detect_language(text)


class _FeatureCache:
    """Domain, readiness and region features of one query's candidates, memoised.

    Each feature depends only on a few values of the two sides (domain codes, TRLs, regions,
    scope) and the language, and many candidates, and many queries, share them: the memo is the
    engine's (``Engine.feature_memo``), keyed by the query side's values and the candidate's,
    so a feature is described once per distinct pair of values, not once per candidate.
    """

    def __init__(self, engine: Engine, query: Any, target: str, lang: str) -> None:
        self.tax, self.lang, self.target, self.query = engine.taxonomy, lang, target, query
        self.scale = engine.settings.distance_scale_km
        memo = engine.feature_memo
        if len(memo) > MEMO_LIMIT:  # distinct values are few; this only bounds odd workloads
            memo.clear()
        self._memo = memo
        domains = tuple(getattr(query, "domains", None) or ())
        if target == "technologies":
            side: tuple[Any, ...] = (
                domains,
                query.trl_min,
                query.trl_max,
                query.region_scope,
                query.home_region,
            )
        else:
            side = (domains, getattr(query, "trl", None), getattr(query, "region", None))
        self._side = (target, lang, self.scale, side)

    def of(self, row: Any) -> tuple[Feature, Feature, Feature]:
        """The three metadata features of a candidate row."""
        memo, side = self._memo, self._side
        if self.target == "technologies":
            need, tech = self.query, row
            r_key: Any = ("r", side, row.trl)
            g_key: Any = ("g", side, row.region)
        else:
            need, tech = row, self.query
            r_key = ("r", side, row.trl_min, row.trl_max)
            g_key = ("g", side, row.region_scope, row.home_region)
        d_key = ("d", side, tuple(row.domains))
        domain = memo.get(d_key)
        if domain is None:
            domain = memo[d_key] = domain_feature(need, tech, self.tax, self.lang)
        readiness = memo.get(r_key)
        if readiness is None:
            readiness = memo[r_key] = (
                Feature(UNKNOWN, "TRL not given")
                if getattr(tech, "trl", None) is None
                else readiness_feature(need, tech)
            )
        region = memo.get(g_key)
        if region is None:
            region = memo[g_key] = region_feature(need, tech, self.tax, self.scale, self.lang)
        return domain, readiness, region


MEMO_LIMIT = 200_000  # memoised features per engine before the memo starts over


class Matcher:
    """Turns a need, a technology or a free-text query into ranked, explained matches."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        need, text, vector = self._stored("needs", key)
        matches = self._rank(
            query=need,
            query_text=text,
            query_vector=vector,
            target="technologies",
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
        target: str = "technologies",
    ) -> list[Match]:
        """Technologies (or needs) for free text.

        For technologies the filters act as a need's TRL window and home region; for needs the
        text is an offer: ``min_trl`` (or ``max_trl``) is its TRL and ``region`` where it is.
        """
        self._check_query(text, domains, min_trl, max_trl, region, scope)
        if target == "needs":
            offer = TextOffer(
                domains=list(domains), trl=min_trl or max_trl, region=region, hard=hard
            )
            return self._rank(
                query=offer,
                query_text=text,
                query_vector=self.engine.embed_query(text),
                target="needs",
                top=top,
                lang=lang,
                languages=(language_of(lang),),
            )
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
        # A free-text answer is read once, in one language: the others are not written.
        return self._rank(
            query=query,
            query_text=text,
            query_vector=vector,
            target="technologies",
            top=top,
            lang=lang,
            languages=(language_of(lang),),
        )

    # -- internals -----------------------------------------------------------------------
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
        tax = self.engine.taxonomy
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

    def _stored_vector(self, collection: str, doc_id: int, text: str) -> np.ndarray:
        index = self.engine.indexes[collection].index
        if doc_id in index:
            return index.vector(doc_id)
        return self.engine.indexes[collection]._embed([text])[0]

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
        engine = self.engine
        if target not in engine.multilingual_indexes:
            return None
        language = language or query_language(query, query_text)
        if not needs_multilingual(language, engine.view(target).languages):
            return None
        space = engine.language_space(target)
        if space is None:
            return None
        if isinstance(query, NeedRow | TechnologyRow):
            source = "needs" if isinstance(query, NeedRow) else "technologies"
            companion = engine.multilingual_indexes[source]
            index = companion.index
            vector = index.vector(query.id) if query.id in index else None
            if vector is None:
                vector = companion._embed([query_text])[0]
        elif engine.multilingual_encoder is engine.encoder:  # one model in both spaces
            vector = query_vector
        else:
            vector = engine.embed_query_multilingual(query_text)
        return space, CrossLingualQuery(
            language=language,
            vector=vector,
            primary_vector=query_vector,
            calibrate=engine.settings.language_calibration,
        )

    def _rank(
        self,
        *,
        query: Any,
        query_text: str,
        query_vector: np.ndarray,
        target: str,
        top: int,
        lang: str = "en",
        observe: Callable[[list[int], np.ndarray], None] | None = None,
        exclude: frozenset[int] = frozenset(),
        languages: Sequence[str] = LANGUAGES,
    ) -> list[Match]:
        """Candidates, hard filters, scores and explanations of one query.

        ``observe``, when given, receives the candidates' ids and feature rows (training reads
        the features of judged pairs through it, so they are the ones serving computes).
        ``languages``: the languages the explanations are written in (stored and routed
        matches keep every language; a free-text answer needs only its reader's).
        """
        engine = self.engine
        dense = engine.indexes[target].index
        view = engine.view(target)
        k = max(engine.settings.candidates, top)
        language = query_language(query, query_text)
        crosslingual = self.crosslingual_query(query, query_text, query_vector, target, language)
        while True:
            candidates = hybrid_candidates(
                query_vector=query_vector,
                query_text=query_text,
                dense=dense,
                lexical=view.lexical,
                k=k,
                rrf_k=engine.settings.rrf_k,
                exclude=exclude,
                crosslingual=crosslingual,
            )
            rows = view.rows
            found = [(c, rows[c.id]) for c in candidates if c.id in rows]
            # Technologies for a need or text without hard filters: nothing to check per row.
            filtered = target != "technologies" or has_hard_filters(query)
            kept = (
                [(c, row) for c, row in found if self._passes(query, row, target)]
                if filtered
                else found
            )
            # Hard filters may empty the candidate list: widen the net until enough survive.
            if len(kept) >= top or k >= len(dense):
                break
            k *= 4
        scored = self._score(query, query_text, kept, target, top, lang, observe, language)
        scored.sort(key=lambda item: (-item[0], item[1]))
        # Only what is shown gets a Match and an explanation (shared words need the texts).
        shown = scored[:top]
        evidence = view.lexical.shared_words(words(query_text), [item[1] for item in shown])
        matches = []
        for rank, (score, _, semantic, lexical, row, feats) in enumerate(shown, start=1):
            components = Components(
                semantic=semantic,
                lexical=lexical,
                domain=feats[0].value,
                readiness=feats[1].value,
                region=feats[2].value,
            )
            match = self._match(row, target, score, components)
            match.explanations = self._explanations(
                query, row, target, semantic, evidence[row.id], languages, (lang, feats)
            )
            if len(feats) > 3:  # ranked by a learned model: name the features that moved it most
                match.explanations = {
                    code: explain([text, learned_phrase(feats[3].moves, code)], code)
                    for code, text in match.explanations.items()
                }
            match.explanation = match.explained_in(language_of(lang))
            match.rank = rank
            matches.append(match)
        return matches

    def _explanations(
        self,
        query: Any,
        row: Any,
        target: str,
        semantic: float,
        terms: Sequence[str],
        languages: Sequence[str] = LANGUAGES,
        ranked: tuple[str, Sequence[Feature]] | None = None,
    ) -> dict[str, str]:
        """The explanation of one shown match in each of ``languages``.

        ``ranked``: the language the ranking wrote its domain and region phrases in, and those
        features; that language reuses them instead of describing the pair again.
        """
        tax, scale = self.engine.taxonomy, self.engine.settings.distance_scale_km
        need, tech = (query, row) if target == "technologies" else (row, query)
        written = {getattr(query, "language", None), row.language}
        across = None not in written and len(written) == 2
        out = {}
        for lang in languages:
            readiness = (
                phrase(lang, "trl.unknown")
                if getattr(tech, "trl", None) is None
                else readiness_feature(need, tech, lang).phrase
            )
            score = f"{semantic:.2f}"
            if across:  # a need and a technology written in different languages
                text = phrase(lang, "text.cross", score=score)
            elif terms:
                text = phrase(lang, "text.terms", score=score, terms=join(lang, terms, "list.sep"))
            else:
                text = phrase(lang, "text.fit", score=score)
            if ranked is not None and ranked[0] == lang:
                domain, region = ranked[1][0].phrase, ranked[1][2].phrase
            else:
                domain = domain_feature(need, tech, tax, lang).phrase
                region = region_feature(need, tech, tax, scale, lang).phrase
            out[lang] = explain([domain, readiness, region, text], lang)
        return out

    def _score(
        self,
        query: Any,
        query_text: str,
        kept: Sequence[tuple[Any, Any]],
        target: str,
        top: int,
        lang: str,
        observe: Callable[[list[int], np.ndarray], None] | None,
        query_lang: str,
    ) -> list[tuple[Any, ...]]:
        """Score the kept candidates: (score, id, semantic, lexical, row, metadata features).

        The feature rows come from ``candidate_features``, the function training uses. The
        promoted learned ranker scores them when there is one (technologies for a need or a
        text: the direction brokers judge), else the fixed weights; the learned ranking's top
        ``top`` results get a ``LearnedFeature`` naming the features that moved them most.
        """
        cache = _FeatureCache(self.engine, query, target, lang)
        metadata = [cache.of(row) for _, row in kept]
        n = len(kept)
        ids = [row.id for _, row in kept]
        # One pass over the candidates, then whole columns (cheaper than a pass per column).
        evidence = np.array(
            [
                (
                    c.semantic,
                    c.bm25,
                    c.dense_rank or 0,
                    c.lexical_rank or 0,
                    r.language == query_lang,
                )
                for c, r in kept
            ],
            dtype=np.float64,
        ).reshape(n, 5)
        components = np.array(
            [(m[0].value, m[1].value, m[2].value) for m in metadata], dtype=np.float64
        ).reshape(n, 3)
        matrix = candidate_features(
            cosine=evidence[:, 0],
            bm25=evidence[:, 1],
            dense_rank=evidence[:, 2],
            lexical_rank=evidence[:, 3],
            domain=components[:, 0],
            readiness=components[:, 1],
            region=components[:, 2],
            language_match=evidence[:, 4],
            query_terms=query_size(query_text),
            doc_terms=self.engine.view(target).lexical.doc_terms(ids),
        )
        if observe is not None:
            observe(ids, matrix)
        if not n:
            return []
        ranker = active_ranker(self.engine.settings) if target == "technologies" else None
        scores = (
            fixed_scores(matrix, self.engine.settings.weights)
            if ranker is None
            else ranker.score(matrix)
        )
        scored: list[tuple[Any, ...]] = [
            (float(scores[i]), ids[i], float(matrix[i, 0]), float(matrix[i, 1]), row, metadata[i])
            for i, (_, row) in enumerate(kept)
        ]
        if ranker is not None and scored:
            shown = sorted(range(n), key=lambda i: (-scored[i][0], scored[i][1]))[:top]
            for i, moves in zip(shown, ranker.moves(matrix, shown), strict=True):
                head = scored[i]
                learned = LearnedFeature(head[0], learned_phrase(moves, lang), moves)
                scored[i] = (*head[:5], (*head[5], learned))
        return scored

    def _passes(self, query: Any, row: Any, target: str) -> bool:
        tax = self.engine.taxonomy
        if target == "technologies":
            return passes_hard_filters(query, row, tax)
        if isinstance(query, TextOffer):
            return query.accepted_by(row, tax)
        return passes_hard_filters(row, query, tax)

    @staticmethod
    def _match(row: Any, target: str, score: float, components: Components) -> Match:
        match = Match(
            need_id=row.id if target == "needs" else None,
            technology_id=row.id if target == "technologies" else 0,
            score=score,
            components=components,
            explanation="",
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
                explanation=m.explanations.get("en", m.explanation),
                explanations=m.explanations or None,
                rank=m.rank,
                engine_version=ENGINE_VERSION,
            )
            for m in matches
        ]
        with transaction(self.engine.sessions) as session:
            repo.replace_matches(session, need_id=need_id, matches=rows)
