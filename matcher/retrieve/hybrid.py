"""Hybrid candidates: the dense and lexical channels fused by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.index import VectorIndex
from matcher.retrieve.bm25 import LexicalIndex
from matcher.retrieve.crosslingual import CrossLingualQuery, LanguageSpace, dense_order


@dataclass(slots=True)
class Candidate:
    """A retrieved document with its evidence from each channel."""

    id: int
    fused: float = 0.0
    dense_rank: int | None = None
    lexical_rank: int | None = None
    semantic: float = 0.0
    bm25: float = 0.0


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal-rank fusion of several best-first id lists."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


def hybrid_candidates(
    *,
    query_vector: np.ndarray,
    query_text: str,
    dense: VectorIndex,
    lexical: LexicalIndex | None,
    k: int,
    rrf_k: int = 60,
    exclude: frozenset[int] = frozenset(),
    crosslingual: tuple[LanguageSpace, CrossLingualQuery] | None = None,
) -> list[Candidate]:
    """Dense and lexical candidates, fused by RRF, each carrying its cosine and BM25 score.

    With ``crosslingual`` the dense channel searches each document language in the
    multilingual space (English pairs stay with the primary model) and a candidate's
    ``semantic`` is the score calibrated across languages (``matcher.crosslingual``).
    """
    candidates: dict[int, Candidate] = {}
    dense_ids: list[int] = []
    semantic_of: dict[int, float] = {}
    if crosslingual is not None:
        space, query = crosslingual
        hits, semantic_of = dense_order(
            space=space, query=query, primary=dense, k=k, exclude=exclude
        )
        for doc_id, score in hits:
            dense_ids.append(doc_id)
            candidates[doc_id] = Candidate(id=doc_id, dense_rank=len(dense_ids), semantic=score)
    elif len(dense):
        scores, ids = dense.search(query_vector.reshape(1, -1).astype(np.float32), k + len(exclude))
        for score, doc_id in zip(scores[0], ids[0], strict=True):
            if doc_id < 0 or int(doc_id) in exclude:
                continue
            dense_ids.append(int(doc_id))
            candidates[int(doc_id)] = Candidate(
                id=int(doc_id), dense_rank=len(dense_ids), semantic=float(score)
            )
    lexical_order: list[int] = []
    searched = lexical is not None and bool(query_text)
    if lexical is not None and searched:
        for doc_id, score in lexical.search(query_text, k + len(exclude)):
            if doc_id in exclude:
                continue
            lexical_order.append(doc_id)
            cand = candidates.setdefault(doc_id, Candidate(id=doc_id))
            cand.lexical_rank = len(lexical_order)
            cand.bm25 = score
    fused = rrf([dense_ids[:k], lexical_order[:k]], k=rrf_k)
    # Lexical-only candidates get their cosine, dense-only ones their BM25, in one batch each.
    unseen = [c.id for c in candidates.values() if c.dense_rank is None and c.id not in semantic_of]
    if unseen:
        cosines = dense.similarities(unseen, query_vector)
        for doc_id, cosine, stored in zip(
            unseen, cosines.tolist(), ~np.isnan(cosines), strict=True
        ):
            if stored:  # NaN: the document has no vector in the dense index
                candidates[doc_id].semantic = cosine
    for doc_id, cand in candidates.items():
        cand.fused = fused.get(doc_id, 0.0)
        if cand.dense_rank is None and doc_id in semantic_of:
            cand.semantic = semantic_of[doc_id]
    if lexical is not None and searched:
        dense_only = [c.id for c in candidates.values() if c.lexical_rank is None]
        for doc_id, score in zip(
            dense_only, lexical.scores_for(query_text, dense_only), strict=True
        ):
            candidates[doc_id].bm25 = score
    return sorted(candidates.values(), key=lambda c: -c.fused)
