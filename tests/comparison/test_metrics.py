"""Our metric code against an independent implementation (pytrec_eval) on the same runs."""

from __future__ import annotations

import random

import pytest

from benchmarks.metrics import evaluate, ndcg_at, per_query

pytrec_eval = pytest.importorskip("pytrec_eval")


def _random_case(seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(300)]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 2, 3]) for d in judged}
        if not any(qrels[qid].values()):
            qrels[qid][judged[0]] = 1
        pool = rng.sample(docs, 150) + [d for d in judged if rng.random() < 0.7]
        scores = rng.sample(range(100_000), len(set(pool)))  # distinct: no tie-breaking doubt
        run[qid] = {d: float(s) for d, s in zip(sorted(set(pool)), scores, strict=True)}
    return qrels, run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metrics_equal_pytrec_eval(seed: int) -> None:
    qrels, run = _random_case(seed)
    reference = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut_10", "recall_10", "recall_100", "recip_rank", "map_cut_100"}
    ).evaluate(run)
    ours = per_query(run, qrels)
    for qid, ref in reference.items():
        assert ours[qid]["ndcg@10"] == pytest.approx(ref["ndcg_cut_10"], abs=1e-9)
        assert ours[qid]["recall@10"] == pytest.approx(ref["recall_10"], abs=1e-9)
        assert ours[qid]["recall@100"] == pytest.approx(ref["recall_100"], abs=1e-9)
        assert ours[qid]["map@100"] == pytest.approx(ref["map_cut_100"], abs=1e-9)
    # MRR@10: trec_eval's recip_rank has no cut, so compare on runs truncated to ten.
    top10 = {q: dict(sorted(r.items(), key=lambda kv: -kv[1])[:10]) for q, r in run.items()}
    ref_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    for qid, ref in ref_rr.items():
        assert ours[qid]["mrr@10"] == pytest.approx(ref["recip_rank"], abs=1e-9)


def test_hand_computed_values() -> None:
    rels = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b"], rels, 10) == pytest.approx(1.0)
    assert ndcg_at(["x", "a"], rels, 10) == pytest.approx((2 / 1.5849625) / (2 + 1 / 1.5849625))
    means = evaluate({"q": {"x": 3.0, "a": 2.0}}, {"q": rels, "q2": {"z": 1}})
    assert means["mrr@10"] == pytest.approx(0.25)  # 1/2 for q, 0 for the missing q2
    assert means["recall@10"] == pytest.approx(0.25)
