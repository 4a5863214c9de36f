"""The features of (query, candidate) pairs: one function for serving, training and benchmarks.

Serving (``matcher.rank.score``), training from labelled data or brokers' feedback
(``matcher.rank.learned.training``) and the benchmarks (``benchmarks.systems.techmatch``) all call
:func:`candidate_features`, so the features a model was trained on are the features it is served.
The first five columns are the fixed ranking layer's components; :func:`fixed_scores` is their
weighted mean, the default ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from matcher.config import RankWeights
from matcher.phrases import feature_name, join, phrase
from matcher.rank.pair import COMPONENTS, Feature, normalised_weights

# Column order of the feature matrix. New features are appended: models name the columns they
# use, so a saved model keeps working when the list grows.
FEATURES: tuple[str, ...] = (
    *COMPONENTS,  # semantic, lexical, domain, readiness, region: each in [0, 1]
    "bm25",  # log(1 + raw BM25): evidence that does not depend on the other candidates
    "semantic_gap",  # cosine minus the best candidate's cosine (<= 0)
    "lexical_gap",  # log BM25 minus the best candidate's log BM25 (<= 0)
    "dense_rr",  # 1 / rank in the dense channel (0: not retrieved there)
    "lexical_rr",  # 1 / rank in the lexical channel (0: not retrieved there)
    "language",  # 1 when query and candidate are written in the same language
    "query_terms",  # log(1 + words in the query): lets a model weigh the channels by query size
    "doc_terms",  # log(1 + distinct terms in the candidate): its length
    "semantic_z",  # cosine standardised over the query's candidates
    "bm25_z",  # log BM25 standardised over the query's candidates
)


def candidate_features(
    *,
    cosine: np.ndarray,
    bm25: np.ndarray,
    dense_rank: np.ndarray,
    lexical_rank: np.ndarray,
    domain: np.ndarray | float,
    readiness: np.ndarray | float,
    region: np.ndarray | float,
    language_match: np.ndarray | float = 1.0,
    query_terms: int = 0,
    doc_terms: np.ndarray | float = 0.0,
) -> np.ndarray:
    """The feature matrix of one query's candidates, columns in ``FEATURES`` order.

    Args:
        cosine: cosine of query and candidate embeddings.
        bm25: raw BM25 score of each candidate for the query.
        dense_rank, lexical_rank: 1-based rank in each retrieval channel; 0 where the channel
            did not return the candidate.
        domain, readiness, region: the metadata components in [0, 1] (scalars broadcast).
        language_match: 1 where query and candidate share a language, else 0.
        query_terms: number of words in the query text (:func:`query_size`).
        doc_terms: distinct BM25 terms of each candidate (``LexicalIndex.doc_terms``).

    Returns:
        An (n, len(FEATURES)) float64 array.
    """
    cosine = np.asarray(cosine, dtype=np.float64)
    n = cosine.shape[0]
    out = np.empty((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return out
    bm25 = np.asarray(bm25, dtype=np.float64)
    # semantic and lexical exactly as rank.semantic_feature / rank.lexical_feature compute them.
    out[:, 0] = np.clip(cosine, 0.0, 1.0)
    best = float(bm25.max())
    if best > 0:
        with np.errstate(invalid="ignore"):
            out[:, 1] = np.where(bm25 > 0, np.minimum(1.0, np.sqrt(bm25 / best)), 0.0)
    else:
        out[:, 1] = 0.0
    out[:, 2] = domain
    out[:, 3] = readiness
    out[:, 4] = region
    log_bm25 = np.log1p(np.maximum(bm25, 0.0))
    out[:, 5] = log_bm25
    out[:, 6] = cosine - cosine.max()
    out[:, 7] = log_bm25 - log_bm25.max()
    for column, ranks in ((8, dense_rank), (9, lexical_rank)):
        ranks = np.asarray(ranks, dtype=np.float64)
        out[:, column] = np.divide(1.0, ranks, out=np.zeros(n), where=ranks > 0)
    out[:, 10] = language_match
    out[:, 11] = np.log1p(query_terms)
    out[:, 12] = np.log1p(doc_terms)
    out[:, 13] = _standardised(cosine)
    out[:, 14] = _standardised(log_bm25)
    return out


def _standardised(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 1e-12 else np.zeros_like(values)


def query_size(text: str) -> int:
    """Words in a query text, cheaply: space-separated tokens, or two CJK characters a word."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return len(text.split()) + cjk // 2


def fixed_scores(matrix: np.ndarray, weights: RankWeights) -> np.ndarray:
    """The fixed ranking: the weighted mean of the five components (``rank.combine``, vectorised).

    Summed in component order so that every score equals ``rank.combine`` to the last bit.
    Across languages (``language`` column 0) a need and a technology share no words, so the
    lexical component is missing rather than zero: those scores are the weighted mean of the
    other four (the bilingual benchmark: zh→en intended answer first 0.29 → 0.81).
    """
    w = normalised_weights(weights)
    total = np.zeros(matrix.shape[0], dtype=np.float64)
    for column, weight in enumerate(w):
        total = total + weight * matrix[:, column]
    if (matrix[:, 10] == 0).any() and w[1] < 1.0:
        # Equal evidence: in a pool that mixes languages, lexical evidence is something only
        # the candidates in the query's language can have (one shared generic word scores a
        # full 1.0 against the best), so it counts for none of them: every candidate is the
        # weighted mean of the other four (the cross-lingual benchmark, benchmarks/RESULTS.md).
        total = (total - w[1] * matrix[:, 1]) / (1.0 - w[1])
    return total


def ranks_in(ids: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """1-based rank of each id in a best-first list, 0 where it is absent."""
    position = {int(doc): rank for rank, doc in enumerate(order, start=1)}
    return np.fromiter((position.get(int(i), 0) for i in ids), dtype=np.float64, count=len(ids))


@dataclass(frozen=True)
class LearnedFeature(Feature):
    """The explanation of a learned ranking: the features that moved a result most.

    ``moves`` holds (feature name, contribution) pairs, largest effect first, so the phrase can
    be rendered in each language with :func:`learned_phrase`.
    """

    moves: tuple[tuple[str, float], ...] = field(default=())


def learned_phrase(moves: Sequence[tuple[str, float]], lang: str = "en") -> str:
    """The explanation phrase of a learned ranking: the features that moved a result most.

    Args:
        moves: (feature, contribution) pairs, largest effect first (``LearnedRanker.moves``).
        lang: the reader's language.
    """
    named = [f"{feature_name(lang, name)} {'↑' if value > 0 else '↓'}" for name, value in moves]
    return phrase(lang, "learned.moved", features=join(lang, named, "list.sep"))
