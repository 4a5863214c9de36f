"""Retrieval metrics with graded relevance (nDCG, recall, MRR, MAP), as trec_eval defines them."""

from __future__ import annotations

import math
from collections.abc import Mapping

Run = Mapping[str, Mapping[str, float]]  # qid → {docid: score}
Qrels = Mapping[str, Mapping[str, int]]  # qid → {docid: grade}

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Doc ids best first; ties broken by doc id (descending, like trec_eval)."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (-kv[1], _neg(kv[0])))]


def _neg(doc_id: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in doc_id)


def ndcg_at(order: list[str], rels: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gain (the grade) and log2 discount."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(order[:k]))
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(order: list[str], rels: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, g in rels.items() if g > 0}
    return len(relevant.intersection(order[:k])) / len(relevant) if relevant else 0.0


def mrr_at(order: list[str], rels: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k."""
    for i, d in enumerate(order[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def ap_at(order: list[str], rels: Mapping[str, int], k: int) -> float:
    """Average precision over the top k, divided by all relevant documents."""
    relevant = {d for d, g in rels.items() if g > 0}
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(order[:k]):
        if d in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant)


def per_query(run: Run, qrels: Qrels) -> dict[str, dict[str, float]]:
    """Every metric for every judged query (a query missing from the run scores 0)."""
    out: dict[str, dict[str, float]] = {}
    for qid, rels in qrels.items():
        order = ranked(run.get(qid, {}))
        out[qid] = {
            "ndcg@10": ndcg_at(order, rels, 10),
            "recall@10": recall_at(order, rels, 10),
            "recall@100": recall_at(order, rels, 100),
            "mrr@10": mrr_at(order, rels, 10),
            "map@100": ap_at(order, rels, 100),
        }
    return out


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the judged queries."""
    rows = per_query(run, qrels)
    if not rows:
        return dict.fromkeys(METRICS, 0.0)
    return {m: sum(r[m] for r in rows.values()) / len(rows) for m in METRICS}
