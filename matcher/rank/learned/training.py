"""Training data for the learned ranker: labelled data sets (BEIR layout) and brokers' feedback.

Both paths end in :func:`matcher.rank.features.candidate_features`, the function serving uses:
labelled data through :func:`flat_pools` (the benchmarks' pipeline, dense + BM25 candidates over
a corpus in memory), feedback through the engine's own ranking path (``Matcher.need_features``),
so a model is trained on exactly the features it will be served.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.embed import Encoder, embed_cached
from matcher.index import FlatIndex
from matcher.rank.features import candidate_features, query_size, ranks_in
from matcher.rank.learned.context import RankerContext
from matcher.rank.learned.model import LabelledSet, ideal_dcg
from matcher.rank.pair import UNKNOWN
from matcher.rank.score import CandidateFeatures
from matcher.retrieve.bm25 import LexicalIndex
from matcher.store import repo

# The candidates of a stored need as serving ranks them: ids and feature rows.
NeedFeatures = CandidateFeatures

DEPTH = 100  # candidates per channel, as the engine's default MATCHER_CANDIDATES

# Grades from what brokers did with a routed match. A lost deal was worth pursuing, so it ranks
# above a decline but below an accepted match; an agreed deal is the best outcome there is.
GRADE_AGREED, GRADE_ACCEPTED, GRADE_LOST, GRADE_DECLINED = 3, 2, 1, 0
# Declines that judge the match. The others (no capacity, conflict of interest, duplicate,
# other) say something about the broker or the inbox, not about the pair, so they are not used.
QUALITY_DECLINES = frozenset(
    {"not_relevant", "trl_mismatch", "region_mismatch", "budget_mismatch", "domain_mismatch"}
)
HOLDOUT_SHARE = 5  # one need in five (by a stable hash of its reference) is held back


# -- labelled data in the BEIR layout --------------------------------------------------------
@dataclass
class BeirData:
    """A BEIR data set: document and query texts, graded judgements of one split."""

    name: str
    split: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_beir(directory: Path, split: str = "dev") -> BeirData:
    """Read corpus.jsonl, queries.jsonl and qrels/<split>.tsv; only judged queries are kept."""
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} not found: is {directory} a BEIR data set?")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) >= 3 and row[2].strip().lstrip("-").isdigit() and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    docs = _jsonl(directory / "corpus.jsonl")
    texts = [f"{d['title'].strip()}. {d['text']}" if d.get("title") else d["text"] for d in docs]
    queries = [q for q in _jsonl(directory / "queries.jsonl") if q["_id"] in qrels]
    return BeirData(
        name=directory.name,
        split=split,
        doc_ids=[d["_id"] for d in docs],
        doc_texts=texts,
        query_ids=[q["_id"] for q in queries],
        query_texts=[q["text"] for q in queries],
        qrels={q["_id"]: qrels[q["_id"]] for q in queries},
    )


@dataclass
class Pool:
    """One query's candidates (corpus positions) and their feature rows."""

    ids: np.ndarray
    matrix: np.ndarray


def flat_pools(
    *,
    doc_vectors: np.ndarray,
    query_vectors: np.ndarray,
    query_texts: Sequence[str],
    lexical: LexicalIndex | None = None,
    dense: FlatIndex | None = None,
    doc_texts: Sequence[str] | None = None,
    depth: int = DEPTH,
    domain_vectors: np.ndarray | None = None,
) -> list[Pool]:
    """Every query's candidates over a corpus in memory: dense top-``depth`` and BM25
    top-``depth``, with the features serving computes. Documents are identified by position.

    BEIR documents carry no domain codes, readiness or region: those components are constant
    (the values the fixed ranking has always used), unless ``domain_vectors`` gives each query
    a field description whose cosine with a candidate stands in for the domain component.
    """
    if lexical is None:
        assert doc_texts is not None, "give the lexical index or the document texts"
        lexical = LexicalIndex(range(len(doc_vectors)), doc_texts)
    if dense is None:
        dense = FlatIndex(doc_vectors.shape[1])
        dense.add(np.arange(len(doc_vectors), dtype=np.int64), doc_vectors)
    _, dense_ids = dense.search(query_vectors, depth)
    pools = []
    for q, text in enumerate(query_texts):
        dense_order = [int(i) for i in dense_ids[q] if i >= 0]
        bm25_all = lexical.scores(text)
        lexical_order = [i for i, _ in lexical.search(text, depth, scores=bm25_all)]
        ids = np.fromiter(dict.fromkeys(dense_order + lexical_order), dtype=np.int64)
        cosine = doc_vectors[ids] @ query_vectors[q]
        domain: np.ndarray | float = UNKNOWN
        if domain_vectors is not None:
            domain = np.clip(doc_vectors[ids] @ domain_vectors[q], 0.0, 1.0)
        matrix = candidate_features(
            cosine=cosine,
            bm25=bm25_all[ids],
            dense_rank=ranks_in(ids, dense_order),
            lexical_rank=ranks_in(ids, lexical_order),
            domain=domain,
            readiness=1.0,  # no readiness in the data: every candidate fits
            region=UNKNOWN,
            language_match=1.0,
            query_terms=query_size(text),
            doc_terms=lexical.doc_terms(ids.tolist()),
        )
        pools.append(Pool(ids, matrix))
    return pools


def labelled_pools(
    pools: Sequence[Pool],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    qrels: dict[str, dict[str, int]],
) -> LabelledSet:
    """The pools with the judgements as grades (unjudged candidates: grade 0)."""
    matrices, grades, sizes, ideal, docs = [], [], [], [], []
    for qid, pool in zip(query_ids, pools, strict=True):
        rels = qrels.get(qid, {})
        names = [doc_ids[i] for i in pool.ids]
        matrices.append(pool.matrix)
        grades.append(np.array([rels.get(d, 0) for d in names], dtype=np.float64))
        sizes.append(len(names))
        ideal.append(ideal_dcg(list(rels.values())))
        docs.extend(names)
    return LabelledSet(
        matrix=np.concatenate(matrices) if matrices else np.zeros((0, 0)),
        grades=np.concatenate(grades) if grades else np.zeros(0),
        starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        ideal=np.asarray(ideal, dtype=np.float64),
        query_ids=list(query_ids),
        doc_ids=docs,
    )


def beir_set(data: BeirData, encoder: Encoder, cache: Any = None) -> LabelledSet:
    """A BEIR data set embedded (through ``cache`` when given) and pooled into training rows."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        if cache is None:
            return encoder.encode(list(texts))
        return embed_cached(encoder, texts, cache)

    pools = flat_pools(
        doc_vectors=embed(data.doc_texts),
        query_vectors=embed(data.query_texts),
        query_texts=data.query_texts,
        doc_texts=data.doc_texts,
    )
    return labelled_pools(pools, data.query_ids, data.doc_ids, data.qrels)


# -- brokers' feedback and deal outcomes -----------------------------------------------------
def is_held_back(need_ref: str) -> bool:
    """Whether a need's feedback is kept out of training, to judge promotions on.

    A stable hash of the reference decides, so every model is held back from the same needs.
    """
    digest = hashlib.sha256(need_ref.encode("utf-8")).digest()
    return digest[0] % HOLDOUT_SHARE == 0


def feedback_grades(context: RankerContext) -> dict[tuple[int, int], int]:
    """The grade of each (need id, technology id) pair that brokers judged.

    A deal outcome outranks feedback on the same match: agreed 3, claimed or in progress 2,
    lost 1. Otherwise the broker's latest verdict: accepted 2, declined for a reason about the
    match 0. Declines for other reasons are left out.
    """
    grades: dict[tuple[int, int], int] = {}
    with context.sessions() as session:
        for need_id, tech_id, decision, reason in repo.feedback_verdicts(session):
            pair = (need_id, tech_id)
            if decision == "accept":
                grades[pair] = GRADE_ACCEPTED
            elif reason in QUALITY_DECLINES:
                grades[pair] = GRADE_DECLINED
            else:
                grades.pop(pair, None)  # a later non-quality decline: no verdict on the pair
        for need_id, tech_id, stage in repo.deal_stages(session):
            grades[(need_id, tech_id)] = {"agreed": GRADE_AGREED, "closed_lost": GRADE_LOST}.get(
                stage, GRADE_ACCEPTED
            )
    return grades


def feedback_counts(context: RankerContext) -> tuple[int, int]:
    """(judged matches, of which on held-back needs), without ranking anything."""
    grades = feedback_grades(context)
    with context.sessions() as session:
        refs = repo.need_refs(session)
    held = sum(1 for need_id, _ in grades if need_id in refs and is_held_back(refs[need_id]))
    return len(grades), held


@dataclass
class FeedbackData:
    """Brokers' judgements as labelled rows, split into training and held-back needs."""

    train: LabelledSet
    held_back: LabelledSet
    events: int  # judged pairs in all
    held_back_events: int


def feedback_set(context: RankerContext) -> FeedbackData:
    """Feature rows of every judged (need, technology) pair, computed by the serving path.

    Each judged need is ranked again (``need_features``); the features of its judged
    technologies are taken from that ranking. A judged technology that is no longer among the
    need's candidates (archived, or pushed out by new records) cannot be ranked by any model,
    so it is not used. Rows cover judged pairs only: nDCG over them is a condensed list.
    """
    grades = feedback_grades(context)
    by_need: dict[int, dict[int, int]] = {}
    for (need_id, tech_id), grade in grades.items():
        by_need.setdefault(need_id, {})[tech_id] = grade
    with context.sessions() as session:
        refs = repo.need_refs(session)
    parts: dict[bool, list[LabelledSet]] = {True: [], False: []}
    events = {True: 0, False: 0}
    for need_id in sorted(by_need):
        if need_id not in refs:
            continue
        judged = by_need[need_id]
        table = context.need_features(need_id)
        keep = [i for i, tech_id in enumerate(table.ids) if tech_id in judged]
        if not keep:
            continue
        held = is_held_back(refs[need_id])
        g = np.array([judged[table.ids[i]] for i in keep], dtype=np.float64)
        parts[held].append(
            LabelledSet(
                matrix=table.matrix[keep],
                grades=g,
                starts=np.array([0, len(keep)]),
                ideal=np.array([ideal_dcg(g.tolist())]),
                query_ids=[refs[need_id]],
                doc_ids=[table.ids[i] for i in keep],
            )
        )
        events[held] += len(keep)

    def joined(sets: list[LabelledSet]) -> LabelledSet:
        if sets:
            return LabelledSet.concat(sets)
        return LabelledSet(np.zeros((0, 0)), np.zeros(0), np.zeros(1, np.int64), np.zeros(0), [])

    return FeedbackData(
        joined(parts[False]), joined(parts[True]), events[False] + events[True], events[True]
    )


def need_features(context: RankerContext, need_key: int | str) -> CandidateFeatures:
    """Rank a stored need through the serving path and capture its candidates' features."""
    return context.need_features(need_key)
