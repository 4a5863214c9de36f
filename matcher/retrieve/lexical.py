"""The lexical channel: Chinese and English words, stemmed, and BM25 over a collection."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

import bm25s
import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

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
