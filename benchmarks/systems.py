"""The retrieval systems compared on a BEIR data set, each returning a run {qid: {docid: score}}."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from matcher.config import RankWeights
from matcher.index import FlatIndex
from matcher.rank.features import fixed_scores
from matcher.rank.learned.model import LearnedRanker
from matcher.rank.learned.training import Pool, flat_pools
from matcher.retrieve.bm25 import LexicalIndex
from matcher.retrieve.hybrid import rrf

Run = dict[str, dict[str, float]]
DEPTH = 100


@dataclass
class Corpus:
    """A data set prepared once and shared by every system."""

    doc_ids: list[str]
    doc_texts: list[str]
    doc_vectors: np.ndarray
    query_ids: list[str]
    query_texts: list[str]
    query_vectors: np.ndarray
    # Optional domain evidence per query: a vector describing the query's field (e.g. the
    # embedded CPC title of a patent phrase); None where the data set carries no field.
    query_domain_vectors: np.ndarray | None = None
    _lexical: LexicalIndex | None = field(default=None, repr=False)
    _dense: FlatIndex | None = field(default=None, repr=False)

    @property
    def lexical(self) -> LexicalIndex:
        """BM25 over the corpus (built once)."""
        if self._lexical is None:
            self._lexical = LexicalIndex(range(len(self.doc_ids)), self.doc_texts)
        return self._lexical

    @property
    def dense(self) -> FlatIndex:
        """Exact FAISS index over the corpus vectors (built once)."""
        if self._dense is None:
            self._dense = FlatIndex(self.doc_vectors.shape[1])
            self._dense.add(np.arange(len(self.doc_ids), dtype=np.int64), self.doc_vectors)
        return self._dense


def _to_run(corpus: Corpus, per_query: Sequence[Sequence[tuple[int, float]]]) -> Run:
    return {
        qid: {corpus.doc_ids[i]: float(s) for i, s in hits}
        for qid, hits in zip(corpus.query_ids, per_query, strict=True)
    }


def bm25(corpus: Corpus) -> Run:
    """BM25 with the engine's tokenizer and index (tantivy)."""
    return _to_run(corpus, [corpus.lexical.search(q, DEPTH) for q in corpus.query_texts])


def tfidf(corpus: Corpus) -> Run:
    """Word uni- and bigram TF-IDF, cosine (scikit-learn)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    docs = vectorizer.fit_transform(corpus.doc_texts)
    queries = vectorizer.transform(corpus.query_texts)
    hits = []
    for row in range(queries.shape[0]):
        scores = (docs @ queries[row].T).toarray().ravel()
        top = np.argsort(-scores, kind="stable")[:DEPTH]
        hits.append([(int(i), float(scores[i])) for i in top if scores[i] > 0])
    return _to_run(corpus, hits)


def dense(corpus: Corpus) -> Run:
    """Our encoder + FAISS exact inner-product search."""
    scores, ids = corpus.dense.search(corpus.query_vectors, DEPTH)
    return _to_run(
        corpus,
        [
            [(int(i), float(s)) for s, i in zip(srow, irow, strict=True) if i >= 0]
            for srow, irow in zip(scores, ids, strict=True)
        ],
    )


def _channels(
    corpus: Corpus,
) -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]]]:
    scores, ids = corpus.dense.search(corpus.query_vectors, DEPTH)
    dense_hits = [
        [(int(i), float(s)) for s, i in zip(srow, irow, strict=True) if i >= 0]
        for srow, irow in zip(scores, ids, strict=True)
    ]
    lexical_hits = [corpus.lexical.search(q, DEPTH) for q in corpus.query_texts]
    return dense_hits, lexical_hits


def hybrid(corpus: Corpus, rrf_k: int = 60) -> Run:
    """The engine's candidate generation: dense and BM25 fused by reciprocal rank."""
    dense_hits, lexical_hits = _channels(corpus)
    out = []
    for d, lx in zip(dense_hits, lexical_hits, strict=True):
        fused = rrf([[i for i, _ in d], [i for i, _ in lx]], k=rrf_k)
        out.append(sorted(fused.items(), key=lambda kv: -kv[1])[:DEPTH])
    return _to_run(corpus, out)


def pools(corpus: Corpus, *, query_field: bool = False) -> list[Pool]:
    """Every query's candidates (dense and BM25 top 100) with the engine's feature rows.

    The rows come from ``matcher.rank.learned.training.flat_pools``, which calls the feature
    function the engine serves with. BEIR documents carry no domain codes, so the domain
    component is constant unless ``query_field`` scores each candidate against the query's field
    description.
    """
    field_vectors = corpus.query_domain_vectors if query_field else None
    return flat_pools(
        doc_vectors=corpus.doc_vectors,
        query_vectors=corpus.query_vectors,
        query_texts=corpus.query_texts,
        lexical=corpus.lexical,
        dense=corpus.dense,
        depth=DEPTH,
        domain_vectors=field_vectors,
    )


def techmatch(
    corpus: Corpus,
    weights: RankWeights | None = None,
    *,
    query_field: bool = False,
    ranker: LearnedRanker | None = None,
    candidate_pools: Sequence[Pool] | None = None,
) -> Run:
    """The full pipeline: hybrid candidates scored by the fixed weights or a learned ranker."""
    weights = weights or RankWeights()
    out = []
    for pool in candidate_pools or pools(corpus, query_field=query_field):
        if ranker is None:
            scores = fixed_scores(pool.matrix, weights)
        else:
            scores = ranker.decision(pool.matrix)
        order = np.argsort(-scores, kind="stable")[:DEPTH]
        out.append([(int(pool.ids[j]), float(scores[j])) for j in order])
    return _to_run(corpus, out)


def txtai_dense(corpus: Corpus, model_path: str, *, hybrid: bool = False) -> Run:
    """txtai's embeddings database with the same model (it encodes the corpus itself)."""
    from txtai import Embeddings

    config = {"path": model_path, "content": False, "backend": "faiss"}
    if hybrid:
        config["hybrid"] = True
    embeddings = Embeddings(config)
    embeddings.index([(i, t, None) for i, t in enumerate(corpus.doc_texts)])
    results = embeddings.batchsearch(corpus.query_texts, DEPTH)
    return _to_run(corpus, [[(int(i), float(s)) for i, s in hits] for hits in results])
