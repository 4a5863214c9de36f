"""BM25 over a collection on tantivy, updated one document at a time.

Documents are indexed by their BM25 terms (``matcher.retrieve.lexical.tokenize``: stemmed
English words, Chinese words segmented by jieba, adjacent-word bigrams), joined by spaces and
split again by tantivy's whitespace tokenizer, so the Chinese segmentation and the bigrams stay
ours. A write replaces or removes one document and commits; nothing is rebuilt. tantivy scores
with Lucene's BM25 (k1 1.2, b 0.75); bm25s, which this replaces, used k1 1.5 (measured on both
dev sets in benchmarks/RESULTS.md, issue 13).

Each document keeps its terms (for the words an explanation shows as shared) and its number of
distinct terms (a length feature of the ranker) beside its id.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tantivy

from matcher.retrieve.lexical import GENERIC_WORDS, stems_of, tokenize

WRITER_HEAP_BYTES = 32 * 1024 * 1024  # tantivy's indexing buffer per collection


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True, fast=True)
    builder.add_text_field("terms", stored=True, tokenizer_name="whitespace", index_option="freq")
    builder.add_integer_field("nterms", fast=True)
    return builder.build()


def _int(value: object) -> int:
    """A fast field's value as an int (0 when the document has none)."""
    return int(value) if isinstance(value, int | float) else 0


class LexicalIndex:
    """BM25 over documents (id, text): searched, scored for given ids, updated in place.

    ``path`` keeps the index in that directory (memory-mapped: a write commits in ~10 ms at
    100k documents, where the in-memory directory took ~100 ms, and the pages are the page
    cache's, not the heap's); without one it lives in memory. ``documents`` are streamed in
    after ``ids``/``texts`` (a large collection without a list of all its texts).
    """

    def __init__(
        self,
        ids: Sequence[int] = (),
        texts: Sequence[str] = (),
        *,
        path: Path | None = None,
        documents: Iterable[tuple[int, str]] = (),
    ) -> None:
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=None if path is None else str(path))
        self._writer = self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
        self._lock = threading.Lock()  # one writer; searches read the last committed state
        self._searcher = self._index.searcher()
        given = list(zip(ids, texts, strict=True))
        # The ids in the order given: what ``scores`` aligns its vector with.
        order: list[int] = []
        with self._lock:
            for doc_id, text in itertools.chain(given, documents):
                order.append(int(doc_id))
                self._add(int(doc_id), text)
            if order:
                self._commit()
        self.ids = np.asarray(order, dtype=np.int64)
        self._positions: dict[int, int] | None = None

    @property
    def _position(self) -> dict[int, int]:
        """Each id's place in ``self.ids`` (built on first use: serving never needs it)."""
        if self._positions is None:
            self._positions = {int(i): p for p, i in enumerate(self.ids)}
        return self._positions

    def __len__(self) -> int:
        return int(self._searcher.num_docs)

    # -- writing -------------------------------------------------------------------------
    def upsert(self, items: Iterable[tuple[int, str]], *, replace: bool = True) -> None:
        """Add documents, replacing any stored under the same id, and commit once."""
        with self._lock:
            for doc_id, text in items:
                if replace:
                    self._writer.delete_documents_by_term("id", int(doc_id))
                self._add(int(doc_id), text)
            self._commit()

    def _add(self, doc_id: int, text: str) -> None:
        terms = tokenize(text)
        self._writer.add_document(
            tantivy.Document(id=doc_id, terms=" ".join(terms), nterms=len(set(terms)))
        )

    def remove(self, ids: Iterable[int]) -> None:
        """Remove documents by id (unknown ids are ignored) and commit once."""
        with self._lock:
            for doc_id in ids:
                self._writer.delete_documents_by_term("id", int(doc_id))
            self._commit()

    def _commit(self) -> None:
        self._writer.commit()
        self._index.reload()
        self._searcher = self._index.searcher()

    # -- reading -------------------------------------------------------------------------
    def _terms_query(self, terms: Sequence[str]) -> tantivy.Query:
        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t))
                for t in terms
            ]
        )

    def _of_ids(self, doc_ids: Sequence[int]) -> tantivy.Query:
        return tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(self._schema, "id", [int(d) for d in doc_ids]), 0.0
        )

    def search(
        self, query: str, k: int, *, scores: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (id, score) with a positive score, best first, ties by id (from ``scores``, a
        vector of ``scores(query)``, when given)."""
        if scores is not None:
            k = min(k, int((scores > 0).sum()))
            if k <= 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.lexsort((self.ids[top], -scores[top]))]  # ties: the lower id first
            return [(int(self.ids[p]), float(scores[p])) for p in top]
        terms = tokenize(query)
        if not terms or k <= 0:
            return []
        searcher = self._searcher
        hits = searcher.search(self._terms_query(terms), k, count=False).hits
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        found = [
            (_int(i), float(score)) for (score, _), i in zip(hits, ids, strict=True) if score > 0
        ]
        return sorted(found, key=lambda hit: (-hit[1], hit[0]))  # ties: the lower id first

    def scores_for(self, query: str, doc_ids: Sequence[int]) -> list[float]:
        """BM25 scores of some documents for a query (0 for no shared term or unknown id)."""
        terms = tokenize(query)
        if not terms or not len(doc_ids):
            return [0.0] * len(doc_ids)
        searcher = self._searcher
        query_ = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, self._of_ids(doc_ids)),
                (tantivy.Occur.Should, self._terms_query(terms)),
            ]
        )
        hits = searcher.search(query_, len(doc_ids), count=False).hits
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        found = {_int(i): float(score) for (score, _), i in zip(hits, ids, strict=True)}
        return [found.get(int(d), 0.0) for d in doc_ids]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document the index was built with, aligned with ``self.ids``
        (for fixed sets such as a benchmark's corpus; serving uses ``search``/``scores_for``)."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        for doc_id, score in self.search(query, max(len(self), 1)):
            position = self._position.get(doc_id)
            if position is not None:
                out[position] = score
        return out

    def scores_of(self, scores: np.ndarray, doc_ids: Sequence[int]) -> list[float]:
        """Several documents' entries of a ``scores`` vector (0 for an unknown id)."""
        return [
            float(scores[self._position[int(d)]]) if int(d) in self._position else 0.0
            for d in doc_ids
        ]

    def _stored(self, doc_ids: Sequence[int], field: str) -> dict[int, object]:
        """A stored or fast field of some documents by id."""
        if not len(doc_ids):
            return {}
        searcher = self._searcher
        hits = searcher.search(self._of_ids(doc_ids), len(doc_ids), count=False).hits
        addresses = [address for _, address in hits]
        ids = searcher.fast_field_values("id", addresses)
        if field == "terms":
            values: list[object] = [searcher.doc(a)["terms"][0] for a in addresses]
        else:
            values = list(searcher.fast_field_values(field, addresses))
        return {_int(i): v for i, v in zip(ids, values, strict=True)}

    def doc_terms(self, doc_ids: Sequence[int]) -> np.ndarray:
        """Distinct terms (stems and bigrams) of each document, 0 for an unknown id: a document
        length for the ranker."""
        counts = self._stored(doc_ids, "nterms")
        return np.array([_int(counts.get(int(d))) for d in doc_ids], dtype=np.float64)

    def shared_words(
        self, query_words: Sequence[str], doc_ids: Sequence[int], limit: int = 4
    ) -> dict[int, list[str]]:
        """For each document, the query's words whose stem it contains (longest first)."""
        stored = {d: set(str(t).split()) for d, t in self._stored(doc_ids, "terms").items()}
        unique = [w for w in dict.fromkeys(query_words) if w not in GENERIC_WORDS]
        pairs = list(zip(unique, stems_of(unique), strict=True))
        out: dict[int, list[str]] = {}
        for doc_id in doc_ids:
            terms = stored.get(int(doc_id), set())
            found = [word for word, stem in pairs if stem in terms]
            out[int(doc_id)] = sorted(found, key=len, reverse=True)[:limit]
        return out
