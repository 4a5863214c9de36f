"""The engine against the engine + a cross-encoder trained here, in grouped cross-validation.

In each fold the cross-encoder (``matcher.rank.cross``, initialised from the shipped MiniLM
weights) is trained on the training queries only: their judged documents as positives, hard
negatives from the engine's own candidate pool for that query. A fifth of the training queries
is kept out of training to choose ``alpha``, the weight of the engine's score in the mix. The
held-out queries' top ``--top`` candidates (the engine's order) are then re-ranked; the rest
keep their place. Folds split by query *text* (GroupKFold), so a phrase asked in several patent
classes (uspppm-dev) never sits on both sides. Reported: nDCG@10 of the engine, of the
cross-encoder alone and of the chosen mix on the held-out queries (mean over folds), training
seconds per fold, and the added latency per query (the re-rank of the top candidates).

    python -m benchmarks.rerank --dataset ../shared/benchmarks/sbir-dev --split dev \
        [--folds 5] [--top 20] [--epochs 1] [--max-queries N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from benchmarks import systems
from benchmarks.beir import BeirDataset, load_beir
from benchmarks.quality import prepare
from matcher.config import RankWeights
from matcher.embed import get_encoder
from matcher.rank.cross import CrossReranker, combine, training_pairs
from matcher.rank.features import fixed_scores
from matcher.rank.learned.model import LabelledSet, mean_ndcg
from matcher.rank.learned.training import labelled_pools

ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # weight of the engine's standardised score
VALIDATION_SHARE = 0.2  # of each fold's training queries, kept out of training to choose alpha


def cross_text(ds: BeirDataset, qid: str, field: bool) -> str:
    """The query as the cross-encoder reads it: its text, and its field when it has one (the
    CPC class title of a uspppm-dev phrase: the same phrase means different things there)."""
    query = ds.queries[qid]
    title = query.get("metadata", {}).get("cpc_title") if field else None
    return f"{query['text']} [{title}]" if title else str(query["text"])


def _groups(texts: list[str]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(t.strip().lower(), len(index)) for t in texts])


def _sample(groups: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Whole groups, in a seeded random order, until ``limit`` queries (all: every query)."""
    if limit is None or limit >= len(groups):
        return np.arange(len(groups))
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for g in rng.permutation(np.unique(groups)):
        if len(chosen) >= limit:
            break
        chosen.extend(np.flatnonzero(groups == g).tolist())
    return np.array(sorted(chosen))


def _top(first: np.ndarray, data: LabelledSet, g: int, top: int) -> np.ndarray:
    """Row numbers of query ``g``'s engine top ``top``, best first."""
    a, b = data.starts[g], data.starts[g + 1]
    return a + np.argsort(-first[a:b], kind="stable")[:top]


def _reordered(
    first: np.ndarray, data: LabelledSet, tops: list[np.ndarray], new: list[np.ndarray]
) -> np.ndarray:
    """The engine's scores with each query's top candidates replaced by their new order."""
    out = first.copy()
    for rows, scores in zip(tops, new, strict=True):
        out[rows] = 1e6 + scores  # above every candidate left out of the re-rank
    return out


def _ndcg_with(part: dict[str, Any], alpha: float | None) -> float:
    """nDCG@10 of a part re-ranked by the cross-encoder mixed with weight ``alpha``
    (None: the engine's order)."""
    data, first = part["data"], part["first"]
    if alpha is None:
        return mean_ndcg(first, data)
    new = [
        combine(c, first[rows], alpha) for rows, c in zip(part["tops"], part["cross"], strict=True)
    ]
    return mean_ndcg(_reordered(first, data, part["tops"], new), data)


def _score_part(
    model: CrossReranker,
    data: LabelledSet,
    first: np.ndarray,
    texts: list[str],
    docs: dict[str, str],
    top: int,
) -> dict[str, Any]:
    """Cross-encoder scores of every query's top candidates, timed query by query."""
    tops, cross, millis = [], [], []
    for g in range(len(data)):
        rows = _top(first, data, g, top)
        candidates = [docs[data.doc_ids[r]] for r in rows]
        t0 = time.perf_counter()
        cross.append(model.scores([(texts[g], c) for c in candidates]))
        combine(cross[-1], first[rows], model.alpha)  # the mix serving would compute too
        millis.append((time.perf_counter() - t0) * 1000.0)
        tops.append(rows)
    return {"data": data, "first": first, "tops": tops, "cross": cross, "ms": millis}


def cross_validate(
    ds: BeirDataset,
    data: LabelledSet,
    *,
    folds: int = 5,
    top: int = 20,
    epochs: int = 1,
    max_length: int = 128,
    batch_size: int = 16,
    negatives: int = 4,
    positives: int = 4,
    field: bool = True,
    seed: int = 0,
    log: Any = print,
) -> dict[str, Any]:
    """Grouped k-fold CV of the cross-encoder re-ranking the engine's top ``top``."""
    first = fixed_scores(data.matrix, RankWeights())
    texts = [cross_text(ds, q, field) for q in data.query_ids]
    docs = {
        d: ds.doc_text(d) for d in set(data.doc_ids) | {d for r in ds.qrels.values() for d in r}
    }
    groups = _groups([ds.queries[q]["text"] for q in data.query_ids])
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("engine", "cross", "mixed", "oracle", "alpha")}
    rows.update(seconds=[], pairs=[], loss=[])
    latency: list[float] = []
    splitter = GroupKFold(n_splits=max(2, min(folds, len(np.unique(groups)))))
    for k, (train_q, test_q) in enumerate(splitter.split(texts, groups=groups)):
        train_groups = np.unique(groups[train_q])
        size = max(1, int(len(train_groups) * VALIDATION_SHARE))
        held = rng.choice(train_groups, size=size, replace=False)
        val_q = train_q[np.isin(groups[train_q], held)]
        fit_q = train_q[~np.isin(groups[train_q], held)]
        pairs, labels = [], []
        for g in fit_q:
            ranked = [data.doc_ids[r] for r in _top(first, data, g, 10**6)]
            judged = {d: float(v) for d, v in ds.qrels[data.query_ids[g]].items()}
            p, lab = training_pairs(
                texts[g],
                judged,
                ranked,
                texts=docs,
                negatives=negatives,
                depth=max(30, 2 * top),
                positives=positives,
                rng=rng,
            )
            pairs += p
            labels += lab
        model = CrossReranker(max_length=max_length, seed=seed)
        stats = model.train(pairs, labels, epochs=epochs, batch_size=batch_size)
        parts = {}
        for name, queries in (("val", val_q), ("test", test_q)):
            sub = data.subset(queries)
            parts[name] = _score_part(
                model, sub, first_of(sub), [texts[g] for g in queries], docs, top
            )
        alpha = max(ALPHAS, key=lambda a: (round(_ndcg_with(parts["val"], a), 6), -a))
        model.alpha = alpha
        test = parts["test"]
        oracle = [test["data"].grades[r] for r in test["tops"]]
        rows["engine"].append(_ndcg_with(test, None))
        rows["cross"].append(_ndcg_with(test, 0.0))
        rows["mixed"].append(_ndcg_with(test, alpha))
        rows["oracle"].append(
            mean_ndcg(_reordered(test["first"], test["data"], test["tops"], oracle), test["data"])
        )
        rows["alpha"].append(alpha)
        rows["seconds"].append(stats.seconds)
        rows["pairs"].append(stats.pairs)
        rows["loss"].append([stats.first_loss, stats.last_loss])
        latency += test["ms"]
        log(
            f"fold {k + 1}: {len(fit_q)} training queries ({stats.pairs} pairs, "
            f"{stats.seconds:.0f} s),"
            f" {len(val_q)} for alpha, {len(test_q)} held out: engine {rows['engine'][-1]:.4f},"
            f" cross {rows['cross'][-1]:.4f}, mixed {rows['mixed'][-1]:.4f} (alpha {alpha})"
        )
    mean = {k: round(float(np.mean(rows[k])), 4) for k in ("engine", "cross", "mixed", "oracle")}
    return {
        "queries": len(data),
        "groups": int(len(np.unique(groups))),
        "folds": len(rows["engine"]),
        "engine_ndcg@10": mean["engine"],
        "cross_ndcg@10": mean["cross"],
        "mixed_ndcg@10": mean["mixed"],
        "oracle_top_ndcg@10": mean["oracle"],
        "gain": round(mean["mixed"] - mean["engine"], 4),
        "per_fold": {k: [round(v, 4) for v in rows[k]] for k in ("engine", "cross", "mixed")},
        "alpha_per_fold": rows["alpha"],
        "train_seconds_per_fold": rows["seconds"],
        "train_pairs_per_fold": rows["pairs"],
        "loss_first_last_per_fold": rows["loss"],
        "latency_ms_p50": round(float(np.percentile(latency, 50)), 1),
        "latency_ms_p95": round(float(np.percentile(latency, 95)), 1),
    }


def first_of(data: LabelledSet) -> np.ndarray:
    """The engine's score of every row (the fixed weights, as served)."""
    return fixed_scores(data.matrix, RankWeights())


def run(
    dataset: Path,
    split: str = "dev",
    *,
    max_queries: int | None = None,
    seed: int = 0,
    **settings: Any,
) -> dict[str, Any]:
    """Prepare the data set (embeddings through the cache), pool, cross-validate."""
    t0 = time.perf_counter()
    ds = load_beir(dataset, split)
    corpus = prepare(ds, get_encoder(), progress=False)
    data = labelled_pools(systems.pools(corpus), corpus.query_ids, corpus.doc_ids, ds.qrels)
    groups = _groups([ds.queries[q]["text"] for q in data.query_ids])
    data = data.subset(_sample(groups, max_queries, seed))
    prepared = round(time.perf_counter() - t0, 1)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    report = cross_validate(ds, data, seed=seed, **settings)
    report.update(
        dataset=ds.name,
        split=split,
        settings={"max_queries": max_queries, "seed": seed, **settings},
        prepare_seconds=prepared,
        cv_seconds=round(time.perf_counter() - t0, 1),
        load_average_before=[round(v, 2) for v in load_before],
        load_average_after=[round(v, 2) for v in os.getloadavg()],
    )
    return report


def table(report: dict[str, Any]) -> str:
    """One report as a Markdown table row (with its header)."""
    return "\n".join(
        [
            "| data set | queries | folds | engine | cross-encoder | mixed (alpha per fold) "
            "| gain | perfect top-K | train s/fold | latency p50 / p95 |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {report['dataset']} | {report['queries']} | {report['folds']} | "
            f"{report['engine_ndcg@10']:.4f} | {report['cross_ndcg@10']:.4f} | "
            f"{report['mixed_ndcg@10']:.4f} ({', '.join(map(str, report['alpha_per_fold']))}) | "
            f"{report['gain']:+.4f} | {report['oracle_top_ndcg@10']:.4f} | "
            f"{np.mean(report['train_seconds_per_fold']):.0f} | "
            f"{report['latency_ms_p50']:.0f} / {report['latency_ms_p95']:.0f} ms |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rerank", description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--top", type=int, default=20, help="engine candidates re-ranked")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--negatives", type=int, default=4, help="hard negatives per query")
    parser.add_argument("--positives", type=int, default=4, help="judged pairs per query, at most")
    parser.add_argument("--no-field", action="store_true", help="leave the CPC title out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = run(
        args.dataset,
        args.split,
        max_queries=args.max_queries,
        seed=args.seed,
        folds=args.folds,
        top=args.top,
        epochs=args.epochs,
        max_length=args.max_length,
        batch_size=args.batch_size,
        negatives=args.negatives,
        positives=args.positives,
        field=not args.no_field,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
