"""Candidate generation: dense (FAISS), lexical (BM25) and their reciprocal-rank fusion."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import bm25s
import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from matcher.crosslingual import CrossLingualQuery, LanguageSpace, dense_order
from matcher.index import VectorIndex

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {"based", "using", "use", "used", "new", "high", "low"}
# Chinese function words and single-character particles that jieba keeps as words: like English
# stop words they say nothing about the topic, but a short Chinese query matched on them.
_STOP_ZH = frozenset(
    [
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "等",
        "在",
        "是",
        "对",
        "为",
        "将",
        "并",
        "其",
        "以",
        "于",
        "由",
        "从",
        "把",
        "被",
        "也",
        "都",
        "而",
        "且",
        "但",
        "则",
        "即",
        "之",
        "所",
        "可",
        "能",
        "会",
        "要",
        "需",
        "有",
        "无",
        "该",
        "此",
        "这",
        "那",
        "个",
        "种",
        "各",
        "每",
        "中",
        "上",
        "下",
        "内",
        "外",
        "式",
        "性",
        "化",
        "用",
        "用于",
        "通过",
        "进行",
        "以及",
        "及其",
        "一种",
        "一个",
        "我们",
        "我司",
        "公司",
        "企业",
        "目前",
        "现有",
        "需要",
        "希望",
        "可以",
        "能够",
        "具有",
        "实现",
        "采用",
        "其中",
        "并且",
        "或者",
        "以上",
        "以下",
        "左右",
    ]
)
# Words too generic to count as evidence in an explanation ("shared terms: need, process").
_GENERIC = frozenset(
    {
        "need",
        "needs",
        "want",
        "looking",
        "process",
        "line",
        "run",
        "work",
        "customer",
        "customers",
        "system",
        "systems",
        "method",
        "methods",
        "technology",
        "technologies",
        "tool",
        "tools",
        "current",
        "currently",
        "product",
        "products",
        "company",
        "solution",
        "solutions",
        "application",
        "applications",
        "provide",
        "provides",
        "including",
        "year",
        "years",
    }
)


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """BM25 terms: stemmed words plus adjacent-word bigrams.

    Bigrams keep phrases such as "fuel cell" apart from "fuel" and "cell" (measured: +0.02
    nDCG@10 for BM25 on sbir-dev, see benchmarks/RESULTS.md).
    """
    stems = _stemmer().stemWords(words(text))
    return stems + [f"{a}_{b}" for a, b in zip(stems, stems[1:], strict=False)]


def words(text: str) -> list[str]:
    """Lower-cased word tokens without stop words; Chinese runs are segmented into words."""
    tokens: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if _CJK.match(word):
            tokens.extend(w for w in _jieba().lcut(word) if w.strip() and w not in _STOP_ZH)
        elif len(word) > 1 and word not in _STOP:
            tokens.append(word)
    return tokens


class LexicalIndex:
    """BM25 over a fixed set of documents (rebuilt when the collection changes)."""

    def __init__(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self._position = {int(i): p for p, i in enumerate(self.ids)}
        self._bm25 = bm25s.BM25()
        corpus = [tokenize(t) for t in texts]
        if corpus:
            self._bm25.index(corpus, show_progress=False)
        self._vocab: dict[str, int] = dict(getattr(self._bm25, "vocab_dict", {}) or {})

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for the query, aligned with ``self.ids``."""
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(
        self, query: str, k: int, *, scores: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (id, score) with a positive score, best first (``scores`` if already computed)."""
        scores = self.scores(query) if scores is None else scores
        k = min(k, int((scores > 0).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[p]), float(scores[p])) for p in top]

    def shared_words(
        self, query_words: Sequence[str], doc_ids: Sequence[int], limit: int = 4
    ) -> dict[int, list[str]]:
        """For each document, the query's words whose stem it contains (longest first).

        Read from the BM25 term-document matrix, one look-up per query word for all documents,
        so explanations never re-read the texts.
        """
        matrix = getattr(self._bm25, "scores", None)
        out: dict[int, list[str]] = {int(d): [] for d in doc_ids}
        positions = np.array([self._position.get(int(d), -1) for d in doc_ids], dtype=np.int64)
        if not matrix or not len(positions):
            return out
        indptr, indices = matrix["indptr"], matrix["indices"]
        unique = [w for w in dict.fromkeys(query_words) if w not in _GENERIC]
        for word, stem in zip(unique, _stemmer().stemWords(unique), strict=True):
            column = self._vocab.get(stem)
            if column is None or column + 1 >= len(indptr):
                continue
            docs = indices[indptr[column] : indptr[column + 1]]  # sorted per term
            found = np.minimum(np.searchsorted(docs, positions), max(len(docs) - 1, 0))
            has = (docs[found] == positions) if len(docs) else np.zeros(len(positions), bool)
            for doc_id, hit in zip(doc_ids, has.tolist(), strict=True):
                if hit:
                    out[int(doc_id)].append(word)
        return {d: sorted(ws, key=len, reverse=True)[:limit] for d, ws in out.items()}

    def _at(self, values: np.ndarray, doc_ids: Sequence[int]) -> np.ndarray:
        """The entries of a position-aligned array for some documents (0 for an unknown id)."""
        position = self._position
        at = np.fromiter((position.get(int(d), -1) for d in doc_ids), dtype=np.int64)
        if not len(values):
            return np.zeros(len(at))
        return np.where(at >= 0, values[np.maximum(at, 0)], 0.0)

    def scores_of(self, scores: np.ndarray, doc_ids: Sequence[int]) -> list[float]:
        """Several documents' scores out of a ``scores`` vector (0 for an unknown id)."""
        return self._at(scores, doc_ids).tolist()

    def doc_terms(self, doc_ids: Sequence[int]) -> np.ndarray:
        """Distinct terms (stems and bigrams) of each document, 0 for an unknown id.

        Counted once from the BM25 term-document matrix: a document length for the ranker.
        """
        counts = getattr(self, "_doc_terms", None)
        if counts is None:
            matrix = getattr(self._bm25, "scores", None)
            indices = matrix["indices"] if matrix else np.zeros(0, dtype=np.int64)
            counts = np.bincount(indices, minlength=len(self.ids)).astype(np.float64)
            self._doc_terms = counts
        return self._at(counts, doc_ids)


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
    bm25_scores = lexical.scores(query_text) if lexical is not None and query_text else None
    if lexical is not None and bm25_scores is not None:
        for doc_id, score in lexical.search(query_text, k + len(exclude), scores=bm25_scores):
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
    if lexical is not None and bm25_scores is not None:
        dense_only = [c.id for c in candidates.values() if c.lexical_rank is None]
        for doc_id, score in zip(
            dense_only, lexical.scores_of(bm25_scores, dense_only), strict=True
        ):
            candidates[doc_id].bm25 = score
    return sorted(candidates.values(), key=lambda c: -c.fused)
