"""Cross-lingual dense retrieval: a multilingual vector space searched per record language.

A multilingual encoder puts Chinese and English text in one space, but not on one scale: a
query scores every text in its own language higher than text in the other, so a pool that
mixes languages ranks same-language distractors above the right answer in the other language
(measured in benchmarks/RESULTS.md, "Cross-lingual"). The correction: search each document
language on its own, then map that language's scores onto one reference distribution by the
query's own statistics (mean and spread of its scores over that language's documents):

    calibrated = ref_mean + (score - mean_L) / std_L * ref_std

The reference is the primary (English) model's scores over English documents when that model
serves the query (an English query), so English–English cosines from the primary model and the
calibrated cross-language scores share one scale; otherwise it is the multilingual scores over
the query's own language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from matcher.index import VectorIndex

PRIMARY_LANGUAGE = "en"  # what the primary (English-only) model is good at
SAMPLE = 1000  # documents per language that estimate a query's score statistics
_SEED = 20261124


def needs_multilingual(query_language: str, languages: Iterable[str]) -> bool:
    """Whether a query needs the multilingual channel: any side not in the primary language."""
    return query_language != PRIMARY_LANGUAGE or any(lg != PRIMARY_LANGUAGE for lg in languages)


@dataclass(frozen=True)
class LanguageGroup:
    """The records of one language: ids, multilingual vectors and a sample of rows for stats."""

    ids: np.ndarray
    vectors: np.ndarray  # (n, dim) multilingual, row-aligned with ids
    sample: np.ndarray  # row positions used to estimate a query's mean and spread


@dataclass
class LanguageSpace:
    """A collection's multilingual vectors grouped by language, plus a sample of its English
    documents in the primary model's space (the reference scale)."""

    groups: dict[str, LanguageGroup]
    primary_sample: np.ndarray | None  # (m, primary dim) vectors of sampled English documents
    language_of: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        languages: dict[int, str],
        multilingual: VectorIndex,
        primary: VectorIndex | None,
    ) -> LanguageSpace:
        """Group the indexed records by language (records missing from the index are skipped)."""
        rng = np.random.default_rng(_SEED)
        by_language: dict[str, list[int]] = {}
        for doc_id, language in languages.items():
            if doc_id in multilingual:
                by_language.setdefault(language, []).append(doc_id)
        groups = {}
        for language, ids in sorted(by_language.items()):
            vectors = np.stack([multilingual.vector(i) for i in ids]).astype(np.float32)
            sample = np.sort(rng.permutation(len(ids))[:SAMPLE])
            groups[language] = LanguageGroup(np.asarray(ids, dtype=np.int64), vectors, sample)
        primary_sample = None
        english = groups.get(PRIMARY_LANGUAGE)
        if primary is not None and english is not None:
            picked = [int(english.ids[p]) for p in english.sample if int(english.ids[p]) in primary]
            if len(picked) >= 2:
                primary_sample = np.stack([primary.vector(i) for i in picked]).astype(np.float32)
        return cls(groups, primary_sample, {i: lg for i, lg in languages.items()})

    def languages(self) -> list[str]:
        """The languages present, sorted."""
        return list(self.groups)


@dataclass
class CrossLingualQuery:
    """One query's multilingual vector and the calibrated scores of every document it scanned."""

    language: str
    vector: np.ndarray  # in the multilingual space
    # In the primary model's space: scores the English documents of an English query.
    primary_vector: np.ndarray | None
    calibrate: bool = True

    @property
    def uses_primary(self) -> bool:
        """English documents of an English query are scored by the primary model."""
        return self.language == PRIMARY_LANGUAGE and self.primary_vector is not None


def _stats(scores: np.ndarray) -> tuple[float, float]:
    return float(scores.mean()), float(scores.std())


def scan(
    space: LanguageSpace, query: CrossLingualQuery
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Calibrated multilingual scores of every document, by language: {language: (ids, scores)}.

    English documents are left out for an English query: the primary model scores those.
    """
    skip = PRIMARY_LANGUAGE if query.uses_primary else None
    raw = {lg: g.vectors @ query.vector for lg, g in space.groups.items() if lg != skip}
    reference: tuple[float, float] | None = None
    if query.uses_primary and space.primary_sample is not None:
        assert query.primary_vector is not None
        reference = _stats(space.primary_sample @ query.primary_vector)
    elif query.language in raw:
        group = space.groups[query.language]
        reference = _stats(raw[query.language][group.sample])
    out = {}
    for language, scores in raw.items():
        group = space.groups[language]
        if query.calibrate and reference is not None and len(group.sample) >= 2:
            mean, std = _stats(scores[group.sample])
            if std > 1e-6:
                scores = reference[0] + (scores - mean) / std * reference[1]
        out[language] = (group.ids, scores.astype(np.float32))
    return out


def dense_order(
    *,
    space: LanguageSpace,
    query: CrossLingualQuery,
    primary: VectorIndex | None,
    k: int,
    exclude: frozenset[int] = frozenset(),
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """The dense channel across languages: top k of each language, merged by comparable score.

    Returns:
        (best-first (id, semantic) list of at most k per language, and the semantic value of
        every scanned document for candidates that only the lexical channel finds).
    """
    hits: list[tuple[int, float]] = []
    semantic: dict[int, float] = {}
    for ids, scores in scan(space, query).values():
        semantic.update(zip(ids.tolist(), scores.tolist(), strict=True))
        take = min(len(ids), k + len(exclude))
        if take <= 0:
            continue
        top = np.argpartition(-scores, take - 1)[:take]
        hits.extend((int(ids[p]), float(scores[p])) for p in top if int(ids[p]) not in exclude)
    if query.uses_primary and primary is not None and len(primary):
        assert query.primary_vector is not None
        vector = query.primary_vector.reshape(1, -1).astype(np.float32)
        # English documents of an English query: the primary model's own search.
        english = space.groups.get(PRIMARY_LANGUAGE)
        wanted = k + len(exclude) + (len(primary) - (len(english.ids) if english else 0))
        found_scores, found_ids = primary.search(vector, min(len(primary), wanted))
        taken = 0
        for score, doc_id in zip(found_scores[0], found_ids[0], strict=True):
            doc = int(doc_id)
            if doc < 0 or doc in exclude or space.language_of.get(doc) != PRIMARY_LANGUAGE:
                continue
            hits.append((doc, float(score)))
            taken += 1
            if taken >= k:
                break
    hits.sort(key=lambda item: (-item[1], item[0]))
    return hits, semantic
