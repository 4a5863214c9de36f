"""Scoring a query's candidates: memoised metadata features, the feature matrix, the score.

Serving (``Matcher``) scores with :func:`score_candidates`; the feature rows come from
``candidate_features``, the function training and the benchmarks call too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from matcher.config import RankWeights
from matcher.domain import Side
from matcher.rank.features import (
    LearnedFeature,
    candidate_features,
    fixed_scores,
    learned_phrase,
    query_size,
)
from matcher.rank.learned.model import LearnedRanker
from matcher.rank.pair import (
    UNKNOWN,
    Feature,
    domain_feature,
    readiness_feature,
    region_feature,
)
from matcher.retrieve.hybrid import Candidate
from matcher.taxonomy import Taxonomy

MEMO_LIMIT = 200_000  # memoised features per engine before the memo starts over

# Receives the candidates' ids and feature rows of one query (training reads them).
Observer = Callable[[list[int], np.ndarray], None]


@dataclass
class CandidateFeatures:
    """The candidates of one query as serving ranks them: their ids and feature rows."""

    ids: list[int]
    matrix: np.ndarray


@dataclass(frozen=True, slots=True)
class Metadata:
    """The three metadata features of a candidate: domain, readiness, region."""

    domain: Feature
    readiness: Feature
    region: Feature


@dataclass(frozen=True, slots=True)
class Retrieved:
    """A candidate that passed the hard filters: its retrieval evidence and its record."""

    candidate: Candidate
    row: Any


@dataclass(frozen=True, slots=True)
class Scored:
    """A scored candidate: the score, its components' evidence and its features.

    ``learned``: for a result the learned ranker placed among the shown ones, the features
    that moved it most (None under the fixed weights).
    """

    score: float
    id: int
    semantic: float
    lexical: float
    row: Any
    metadata: Metadata
    learned: LearnedFeature | None = None


class FeatureCache:
    """Domain, readiness and region features of one query's candidates, memoised.

    Each feature depends only on a few values of the two sides (domain codes, TRLs, regions,
    scope) and the language, and many candidates, and many queries, share them: ``memo`` is
    shared across queries (the engine's), keyed by the query side's values and the
    candidate's, so a feature is described once per distinct pair of values, not once per
    candidate.
    """

    def __init__(
        self,
        memo: dict[tuple[Any, ...], Any],
        *,
        taxonomy: Taxonomy,
        distance_scale_km: float,
        query: Any,
        target: Side,
        lang: str,
    ) -> None:
        self.tax, self.lang, self.target, self.query = taxonomy, lang, target, query
        # who reads the explanation: the holder of the query side
        self.reader = "need" if target is Side.technologies else "technology"
        self.scale = distance_scale_km
        if len(memo) > MEMO_LIMIT:  # distinct values are few; this only bounds odd workloads
            memo.clear()
        self._memo = memo
        domains = tuple(getattr(query, "domains", None) or ())
        if target is Side.technologies:
            side: tuple[Any, ...] = (
                domains,
                query.trl_min,
                query.trl_max,
                query.region_scope,
                query.home_region,
            )
        else:
            side = (domains, getattr(query, "trl", None), getattr(query, "region", None))
        self._side = (target.value, lang, self.scale, side)

    def of(self, row: Any) -> Metadata:
        """The three metadata features of a candidate row."""
        memo, side = self._memo, self._side
        if self.target is Side.technologies:
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
            region = memo[g_key] = region_feature(
                need, tech, self.tax, self.scale, self.lang, reader=self.reader
            )
        return Metadata(domain, readiness, region)


def scoped(scores: np.ndarray, in_scope: Sequence[bool], weights: RankWeights) -> np.ndarray:
    """Scores with the need's scope applied: a candidate outside it loses ``scope_margin``
    (floored at 0), so it ranks above an in-scope one only when its fit is clearly better."""
    outside = ~np.asarray(in_scope, dtype=bool)
    if weights.scope_margin <= 0 or not outside.any():
        return scores
    return np.maximum(scores - weights.scope_margin * outside, 0.0)


def score_candidates(
    kept: Sequence[Retrieved],
    *,
    features: FeatureCache,
    query_text: str,
    query_lang: str,
    doc_terms: Callable[[list[int]], np.ndarray],
    weights: RankWeights,
    ranker: Callable[[], LearnedRanker | None],
    top: int,
    lang: str,
    observe: Observer | None = None,
) -> list[Scored]:
    """Score the kept candidates of one query.

    The feature rows come from ``candidate_features``, the function training uses. What
    ``ranker`` returns (the promoted learned model, when one ranks this direction) scores them,
    else the fixed weights; the learned ranking's top ``top`` results name the features that
    moved them most (in ``lang``).

    Args:
        kept: the candidates that passed the hard filters.
        features: the query's metadata features.
        query_text: the query, for its size.
        query_lang: the language the query is written in.
        doc_terms: distinct BM25 terms of candidates by id (``LexicalIndex.doc_terms``).
        observe: receives the candidates' ids and feature rows.
    """
    metadata = [features.of(item.row) for item in kept]
    n = len(kept)
    ids = [item.row.id for item in kept]
    # One pass over the candidates, then whole columns (cheaper than a pass per column).
    evidence = np.array(
        [
            (
                item.candidate.semantic,
                item.candidate.bm25,
                item.candidate.dense_rank or 0,
                item.candidate.lexical_rank or 0,
                item.row.language == query_lang,
            )
            for item in kept
        ],
        dtype=np.float64,
    ).reshape(n, 5)
    components = np.array(
        [(m.domain.value, m.readiness.value, m.region.value) for m in metadata], dtype=np.float64
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
        doc_terms=doc_terms(ids),
    )
    if observe is not None:
        observe(ids, matrix)
    if not n:
        return []
    learned_ranker = ranker()
    scores = (
        fixed_scores(matrix, weights) if learned_ranker is None else learned_ranker.score(matrix)
    )
    scores = scoped(scores, [getattr(m.region, "in_scope", True) for m in metadata], weights)
    scored = [
        Scored(
            float(scores[i]),
            ids[i],
            float(matrix[i, 0]),
            float(matrix[i, 1]),
            item.row,
            metadata[i],
        )
        for i, item in enumerate(kept)
    ]
    if learned_ranker is not None:
        shown = sorted(range(n), key=lambda i: (-scored[i].score, scored[i].id))[:top]
        for i, moves in zip(shown, learned_ranker.moves(matrix, shown), strict=True):
            head = scored[i]
            learned = LearnedFeature(head.score, learned_phrase(moves, lang), moves)
            scored[i] = replace(head, learned=learned)
    return scored
