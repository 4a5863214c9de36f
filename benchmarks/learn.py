"""Fixed weights against the learned ranker: grouped CV, transfer, a feedback simulation.

- ``cv``: on each data set, nested grouped 5-fold cross-validation by query. In every outer fold
  the model and its settings are chosen by an inner grouped cross-validation on the training
  queries only, then scored on the held-out queries, against the fixed weights on the same ones.
- ``transfer``: trained (and chosen) on all of one data set, scored on the other.
- ``simulation``: simulated brokers' feedback on the SBIR corpora (``benchmarks.feedback_sim``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import systems
from benchmarks.beir import load_beir
from benchmarks.quality import prepare
from matcher.config import RankWeights
from matcher.embed import get_encoder
from matcher.rank.features import fixed_scores
from matcher.rank.learned.model import (
    GRID,
    TREES,
    LabelledSet,
    cross_validate,
    fold_indices,
    mean_ndcg,
    train,
)
from matcher.rank.learned.training import labelled_pools


def labelled(dataset: Path, split: str, max_queries: int | None = None) -> LabelledSet:
    """A BEIR data set's candidates with their features (the engine's) and grades."""
    ds = load_beir(dataset, split, max_queries=max_queries)
    corpus = prepare(ds, get_encoder(), progress=False)
    return labelled_pools(systems.pools(corpus), corpus.query_ids, corpus.doc_ids, ds.qrels)


def nested_cv(
    data: LabelledSet, *, folds: int = 5, inner_folds: int = 3, weights: RankWeights | None = None
) -> dict[str, Any]:
    """Outer grouped k-fold; the model is chosen inside each training part only."""
    weights = weights or RankWeights()
    fixed, learned, chosen = [], [], []
    for train_q, test_q in fold_indices(data, folds):
        train_part, test = data.subset(train_q), data.subset(test_q)
        model, _ = train(train_part, GRID, folds=inner_folds, weights=weights)
        fixed.append(mean_ndcg(fixed_scores(test.matrix, weights), test))
        learned.append(mean_ndcg(model.decision(test.matrix), test))
        chosen.append(str(model.spec))
    # Every spec on the same outer folds, trees included (measured, not in the default choice).
    flat = cross_validate(data, (*GRID, TREES), folds=folds, weights=weights).summary()
    return {
        "queries": len(data),
        "folds": folds,
        "inner_folds": inner_folds,
        "fixed_ndcg@10": round(float(np.mean(fixed)), 4),
        "learned_ndcg@10": round(float(np.mean(learned)), 4),
        "gain": round(float(np.mean(learned) - np.mean(fixed)), 4),
        "fixed_folds": [round(v, 4) for v in fixed],
        "learned_folds": [round(v, 4) for v in learned],
        "chosen_per_fold": chosen,
        "every_spec_same_folds": flat["learned_ndcg@10"],
    }


def transfer(source: LabelledSet, target: LabelledSet, *, folds: int = 5) -> dict[str, Any]:
    """Train on all of one data set (model chosen by grouped CV there), score on another."""
    weights = RankWeights()
    model, _ = train(source, GRID, folds=folds, weights=weights)
    fixed = mean_ndcg(fixed_scores(target.matrix, weights), target)
    learned = mean_ndcg(model.decision(target.matrix), target)
    return {
        "model": str(model.spec),
        "fixed_ndcg@10": round(fixed, 4),
        "learned_ndcg@10": round(learned, 4),
        "gain": round(learned - fixed, 4),
    }


def run_learn(
    datasets: list[Path],
    *,
    split: str = "dev",
    parts: tuple[str, ...] = ("cv", "transfer", "simulation"),
    folds: int = 5,
    inner_folds: int = 3,
    max_queries: int | None = None,
    simulation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every requested part; the report is JSON-ready."""
    report: dict[str, Any] = {"split": split, "cv": {}, "transfer": {}, "seconds": {}}
    sets: dict[str, LabelledSet] = {}
    if "cv" in parts or "transfer" in parts:
        for path in datasets:
            t0 = time.perf_counter()
            sets[path.name] = labelled(path, split, max_queries)
            report["seconds"][f"features {path.name}"] = round(time.perf_counter() - t0, 1)
    if "cv" in parts:
        for name, data in sets.items():
            t0 = time.perf_counter()
            report["cv"][name] = nested_cv(data, folds=folds, inner_folds=inner_folds)
            report["seconds"][f"cv {name}"] = round(time.perf_counter() - t0, 1)
            print(f"cv {name}: {report['cv'][name]}", flush=True)
    if "transfer" in parts and len(sets) >= 2:
        for source in sets:
            for target in sets:
                if source != target:
                    key = f"{source} -> {target}"
                    report["transfer"][key] = transfer(sets[source], sets[target], folds=folds)
                    print(f"transfer {key}: {report['transfer'][key]}", flush=True)
    if "simulation" in parts:
        from benchmarks.feedback_sim import simulate

        t0 = time.perf_counter()
        report["simulation"] = simulate(**(simulation or {}))
        report["seconds"]["simulation"] = round(time.perf_counter() - t0, 1)
    return report


def table(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = []
    if report["cv"]:
        lines += [
            "| data set | queries | fixed nDCG@10 | learned nDCG@10 | gain | chosen per fold |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in report["cv"].items():
            lines.append(
                f"| {name} | {r['queries']} | {r['fixed_ndcg@10']:.4f} | "
                f"{r['learned_ndcg@10']:.4f} | {r['gain']:+.4f} | "
                f"{', '.join(sorted(set(r['chosen_per_fold'])))} |"
            )
    if report["transfer"]:
        lines += ["", "| trained on → scored on | model | fixed | learned | gain |"]
        lines.append("|---|---|---|---|---|")
        for key, r in report["transfer"].items():
            lines.append(
                f"| {key} | {r['model']} | {r['fixed_ndcg@10']:.4f} | "
                f"{r['learned_ndcg@10']:.4f} | {r['gain']:+.4f} |"
            )
    sim = report.get("simulation")
    if sim:
        lines += [
            "",
            f"Feedback simulation: {sim['needs']} needs ({sim['evaluation_needs']} for "
            f"evaluation), {sim['technologies']} technologies, {sim['repeats']} runs; fixed "
            f"nDCG@10 {sim['fixed_ndcg@10']:.4f}; crossover at {sim['crossover_events']} events",
            "",
            "| feedback events | learned nDCG@10 (mean) | min | max | served | promoted runs |",
            "|---|---|---|---|---|---|",
        ]
        for p in sim["curve"]:
            learned = "—" if p["learned_ndcg@10"] is None else f"{p['learned_ndcg@10']:.4f}"
            lo = "—" if p["learned_min"] is None else f"{p['learned_min']:.4f}"
            hi = "—" if p["learned_max"] is None else f"{p['learned_max']:.4f}"
            lines.append(
                f"| {p['events']} | {learned} | {lo} | {hi} | {p['served_ndcg@10']:.4f} | "
                f"{p['promoted_runs']}/{sim['repeats']} |"
            )
    return "\n".join(lines)
