"""Speed and scale: encoder throughput, index build/latency/recall by size, end to end on SBIR."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.beir import SHARED
from benchmarks.cache import OUT, embed
from matcher.embed import embed_cached, encode_queries, get_encoder
from matcher.index import create_index

QUERY_60 = (
    "We manufacture lithium battery packs for electric buses and need a reliable way to detect "
    "internal short circuits early, before thermal runaway starts, using the voltage and "
    "temperature signals our battery management system already measures, without adding new "
    "sensors, so that the vehicle can warn the driver and isolate the faulty module in time."
)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of a list of milliseconds."""
    a = np.asarray(samples_ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 3) -> list[float]:
    """Milliseconds of each call after a few warm-up calls."""
    return timed_over(lambda _: fn(), [None] * repeat, warmup=warmup)


def timed_over(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 3) -> list[float]:
    """Milliseconds of ``fn(item)`` for each item, after a few warm-up calls."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_awards(limit: int | None = None) -> list[dict[str, Any]]:
    """The real SBIR award abstracts (supply side)."""
    path = SHARED / "sbir-corpora" / "awards_supply.jsonl"
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def load_topics(limit: int) -> list[str]:
    """Real SBIR topic texts (demand side), cut to their first 60 words like a need statement."""
    path = SHARED / "sbir-corpora" / "topics_demand.jsonl"
    out = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            out.append(" ".join(f"{row['title']}. {row['text']}".split()[:60]))
            if len(out) >= limit:
                break
    return out


def award_text(row: dict[str, Any]) -> str:
    """The text embedded for an award (same as the engine's technology text)."""
    return f"{row['title']}. {row['text']}"


# -- encoders -------------------------------------------------------------------------------
def bench_encoders(backends: Sequence[str], n_texts: int, repeat: int) -> dict[str, Any]:
    """Single-query latency and corpus throughput of each encoder backend.

    The query is timed through the backend's query path (``encode_queries``) and compared with
    the first backend's over 300 real topic statements; the corpus through ``encode``.
    """
    texts = [award_text(r) for r in load_awards(n_texts)]
    topics = load_topics(300)
    reference = query_reference = None
    out: dict[str, Any] = {}
    for backend in backends:
        try:
            encoder = get_encoder("all-MiniLM-L6-v2", backend=backend)
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            out[backend] = {"error": str(exc)}
            continue
        latency = percentiles(timed(lambda e=encoder: encode_queries(e, [QUERY_60]), repeat))
        queries = np.concatenate([encode_queries(encoder, [t]) for t in topics])
        t0 = time.perf_counter()
        vectors = encoder.encode(texts)
        seconds = time.perf_counter() - t0
        if reference is None:
            reference, query_reference = vectors, queries
        cosine = float(np.min(np.sum(vectors * reference, axis=1)))
        query_cosine = np.sum(queries * query_reference, axis=1)
        out[backend] = {
            "query_60_words": latency,
            "corpus_texts_per_s": round(len(texts) / seconds, 1),
            "corpus_texts": len(texts),
            "min_cosine_vs_first": round(cosine, 6),
            "query_cosine_vs_first": {
                "min": round(float(query_cosine.min()), 6),
                "mean": round(float(query_cosine.mean()), 6),
            },
        }
    return out


QUERY_60_ZH = (
    "我们为电动公交车生产锂电池包，需要一种可靠的方法，利用电池管理系统已经测量的电压和温度信号，"
    "在热失控开始之前及早发现内部短路，无需增加新的传感器，以便车辆能够及时提醒驾驶员并隔离故障模块。"
)


def chinese_texts(limit: int) -> list[str]:
    """Chinese technology texts of the demo set (the parallel translations)."""
    from benchmarks.bilingual import load_bilingual
    from matcher.domain import TechnologyIn
    from matcher.store.repo import technology_text

    records = load_bilingual().technologies["zh"].values()
    return [technology_text(TechnologyIn(**r)) for r in records][:limit]


def bench_multilingual(models: Sequence[str], n_texts: int, repeat: int) -> dict[str, Any]:
    """Query latency and corpus throughput of each model, in English and in Chinese.

    The primary model (onnx) is measured the same way for comparison: it embeds every record
    too, Chinese ones included. CPU milliseconds (all threads of this process) are reported
    beside wall time: unlike wall time they barely move when other processes share the cores.
    """
    english = [award_text(r) for r in load_awards(n_texts)]
    chinese = chinese_texts(n_texts)
    out: dict[str, Any] = {}
    for name in ["all-MiniLM-L6-v2", *models]:
        encoder = get_encoder(name, backend="onnx")
        row: dict[str, Any] = {"dim": encoder.dim}
        for lang, query, texts in (("en", QUERY_60, english), ("zh", QUERY_60_ZH, chinese)):
            encode_queries(encoder, [query] * 16)  # warm-up: first calls touch the weights
            c0 = time.process_time()
            row[f"query_{lang}"] = percentiles(
                timed(lambda e=encoder, q=query: encode_queries(e, [q]), repeat, warmup=10)
            )
            row[f"query_{lang}"]["cpu_ms"] = round(
                (time.process_time() - c0) * 1000 / (repeat + 10), 2
            )
            t0, c0 = time.perf_counter(), time.process_time()
            encoder.encode(texts)
            row[f"corpus_{lang}_texts_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
            row[f"corpus_{lang}_cpu_ms_per_text"] = round(
                (time.process_time() - c0) * 1000 / len(texts), 1
            )
            row[f"corpus_{lang}_texts"] = len(texts)
        out[name] = row
    return out


# -- indexes --------------------------------------------------------------------------------
def real_vectors() -> np.ndarray:
    """Real MiniLM embeddings: SBIR awards and USPPPM phrases from the benchmark cache."""
    from benchmarks.beir import load_beir

    encoder = get_encoder()
    parts = [embed(encoder, [award_text(r) for r in load_awards()], progress=True)]
    uspppm = load_beir(SHARED / "uspppm-dev")
    parts.append(embed(encoder, [uspppm.doc_text(d) for d in uspppm.corpus], progress=True))
    return np.concatenate(parts).astype(np.float32)


def scaled(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors: the real ones first, then perturbed copies (synthetic) beyond the real count."""
    if n <= len(base):
        return base[:n]
    extra = base[rng.integers(0, len(base), n - len(base))]
    extra = extra + rng.normal(0, 0.03, extra.shape).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.concatenate([base, extra]).astype(np.float32)


def bench_indexes(
    sizes: Sequence[int], n_queries: int, with_txtai: bool, *, synthetic: bool = False
) -> list[dict[str, Any]]:
    """Build time, memory, latency (single, batched) and recall@10 vs exact, per kind and size."""
    rng = np.random.default_rng(7)
    if synthetic:  # smoke runs: random unit vectors, no encoding
        base = rng.normal(size=(max(sizes), 384)).astype(np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
    else:
        base = real_vectors()
    queries_all = base[rng.permutation(len(base))[:n_queries]]
    queries = queries_all + rng.normal(0, 0.02, queries_all.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows = []
    for n in sizes:
        vectors = scaled(base, n, rng)
        ids = np.arange(n, dtype=np.int64)
        exact = None
        for kind in ("flat", "hnsw", "ivf"):
            before = rss_mb()
            t0 = time.perf_counter()
            index = create_index(kind, vectors.shape[1])
            index.add(ids, vectors)
            build = time.perf_counter() - t0
            memory = rss_mb() - before
            latency = percentiles(
                timed_over(lambda q, ix=index: ix.search(q.reshape(1, -1), 10), list(queries))
            )
            t0 = time.perf_counter()
            _, found = index.search(queries, 10)
            batched = (time.perf_counter() - t0) * 1000 / len(queries)
            if kind == "flat":
                exact = found
            recall = _recall(found, exact)
            row = {
                "engine": "techmatch",
                "kind": kind,
                "n": n,
                "build_s": round(build, 2),
                "memory_mb": round(memory, 1),
                "single": latency,
                "batched_ms_per_query": round(batched, 4),
                "recall@10": recall,
                "params": index.params,
            }
            if kind in SWEEP:
                row["sweep"] = _sweep(index, kind, queries, exact)
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
            del index
        if with_txtai:
            rows.append(_txtai_index(vectors, queries, exact))
            print(json.dumps(rows[-1]), flush=True)
    return rows


# The search-time knob of each approximate index and the values tried (recall/latency curve).
SWEEP = {"hnsw": ("ef_search", (16, 32, 64, 128, 256)), "ivf": ("nprobe", (8, 16, 32, 64, 128))}


def _sweep(index: Any, kind: str, queries: np.ndarray, exact: np.ndarray | None) -> list[dict]:
    """Recall@10 and single-query latency for each value of the search-time knob."""
    knob, values = SWEEP[kind]
    default = getattr(index, knob)
    points = []
    for value in values:
        setattr(index, knob, value)
        _, found = index.search(queries, 10)
        latency = timed_over(lambda q, ix=index: ix.search(q.reshape(1, -1), 10), list(queries))
        points.append(
            {
                knob: value,
                "recall@10": _recall(found, exact),
                "p50_ms": percentiles(latency)["p50_ms"],
            }
        )
    setattr(index, knob, default)
    return points


def plot_indexes(rows: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """Recall against latency per index type, and latency against collection size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if "sweep" in row:
            xs = [p["p50_ms"] for p in row["sweep"]]
            ys = [p["recall@10"] for p in row["sweep"]]
            ax.plot(xs, ys, marker="o", label=f"{row['kind']} n={row['n']:,}")
    ax.set_xscale("log")
    ax.set_xlabel("single-query latency p50 (ms)")
    ax.set_ylabel("recall@10 vs exact")
    ax.axhline(0.98, color="grey", linestyle=":", linewidth=1)
    ax.legend(fontsize=8)
    ax.set_title("Recall against latency (search-time knob swept)")
    fig.tight_layout()
    curve = directory / "speed-recall-latency.png"
    fig.savefig(curve, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in sorted({r["kind"] for r in rows}):
        pts = sorted((r["n"], r["single"]["p50_ms"]) for r in rows if r["kind"] == kind)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=kind)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("vectors in the index")
    ax.set_ylabel("single-query latency p50 (ms)")
    ax.legend(fontsize=8)
    ax.set_title("Latency against collection size")
    fig.tight_layout()
    size = directory / "speed-latency-size.png"
    fig.savefig(size, dpi=110)
    plt.close(fig)
    return [curve, size]


def _recall(found: np.ndarray, exact: np.ndarray | None) -> float:
    if exact is None:
        return float("nan")
    hits = sum(len(set(f) & set(e)) for f, e in zip(found.tolist(), exact.tolist(), strict=True))
    return round(hits / exact.size, 4)


def _txtai_index(
    vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray | None
) -> dict[str, Any]:
    from txtai.ann import ANNFactory

    before = rss_mb()
    t0 = time.perf_counter()
    ann = ANNFactory.create({"backend": "faiss", "dimensions": vectors.shape[1]})
    ann.index(vectors)
    build = time.perf_counter() - t0
    memory = rss_mb() - before
    samples = []
    for q in queries:
        s0 = time.perf_counter()
        ann.search(q.reshape(1, -1), 10)
        samples.append((time.perf_counter() - s0) * 1000)
    t0 = time.perf_counter()
    results = ann.search(queries, 10)
    batched = (time.perf_counter() - t0) * 1000 / len(queries)
    found = np.array([[i for i, _ in r] + [-1] * (10 - len(r)) for r in results])
    return {
        "engine": "txtai",
        "kind": "txtai-faiss-default",
        "n": len(vectors),
        "build_s": round(build, 2),
        "memory_mb": round(memory, 1),
        "single": percentiles(samples),
        "batched_ms_per_query": round(batched, 4),
        "recall@10": _recall(found, exact),
    }


# -- end to end -----------------------------------------------------------------------------
def bench_end_to_end(
    n_queries: int, backends: Sequence[str], with_txtai: bool, corpus_backend: str = "onnx"
) -> dict[str, Any]:
    """A need query through the engine over the 22,887 awards, by step; txtai the same way."""
    from benchmarks.e2e import run_end_to_end

    return run_end_to_end(
        n_queries=n_queries,
        backends=backends,
        with_txtai=with_txtai,
        corpus_backend=corpus_backend,
    )


def bench_build(n: int, with_txtai: bool) -> dict[str, Any]:
    """Cold build (encode + index + store) of n award abstracts: the engine against txtai."""
    import tempfile

    from benchmarks.e2e import build_records
    from matcher.config import Settings
    from matcher.embed import PACKAGED_MODELS
    from matcher.engine import Engine

    awards = load_awards(n)
    out: dict[str, Any] = {"documents": len(awards)}
    with tempfile.TemporaryDirectory() as home:
        engine = Engine(Settings(home=Path(home), progress=False))
        engine.encoder.encode(["warm up"])  # model load and ONNX export are not build time
        t0 = time.perf_counter()
        # Encode through the engine's cache (the import below then finds every vector there);
        # the same vectors pick each award's nearest sub-field.
        vectors = embed_cached(engine.encoder, [award_text(a) for a in awards], engine.cache)
        engine.save_records("technologies", build_records(awards, engine, vectors))
        seconds = time.perf_counter() - t0
        out["techmatch"] = {
            "encoder": engine.encoder.name,
            "seconds": round(seconds, 1),
            "extrapolated_22887_s": round(seconds * 22887 / len(awards)),
        }
        engine.close()
    if with_txtai:
        from txtai import Embeddings

        db = Embeddings({"path": PACKAGED_MODELS["all-MiniLM-L6-v2"](), "content": False})
        db.index([(0, "warm up", None)])
        t0 = time.perf_counter()
        db.index([(i, award_text(a), None) for i, a in enumerate(awards)])
        seconds = time.perf_counter() - t0
        out["txtai"] = {
            "seconds": round(seconds, 1),
            "extrapolated_22887_s": round(seconds * 22887 / len(awards)),
        }
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m benchmarks speed``."""
    parser.add_argument(
        "--part", choices=["encoders", "indexes", "e2e", "build", "all"], default="all"
    )
    parser.add_argument("--build-docs", type=int, default=2000, help="abstracts for --part build")
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="index sizes, comma-separated (add 1000000 for the full scale run)",
    )
    parser.add_argument("--queries", type=int, default=500, help="queries per measurement")
    parser.add_argument("--texts", type=int, default=512, help="texts for encoder throughput")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8-query,onnx-int8")
    parser.add_argument(
        "--multilingual",
        default="use-multilingual-v3,multilingual-e5-small",
        help="encoders: multilingual models measured beside MiniLM, English and Chinese text "
        "('' to skip)",
    )
    parser.add_argument(
        "--corpus-backend",
        default="onnx",
        help="e2e: encoder of the 22,887 abstracts (the engine's default, onnx fp32, gives the "
        "torch vectors to 2e-7 at twice the speed)",
    )
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="indexes: random vectors instead of real embeddings (smoke runs)",
    )
    parser.add_argument("--json", type=Path, default=OUT / "speed.json")


def main(args: argparse.Namespace) -> int:
    """Run the chosen parts and write the JSON report."""
    backends = [b for b in args.backends.split(",") if b]
    report: dict[str, Any] = {"machine": machine()}
    if args.part in ("encoders", "all"):
        report["encoders"] = bench_encoders(backends, args.texts, repeat=100)
        print(json.dumps(report["encoders"], indent=2), flush=True)
        models = [m for m in args.multilingual.split(",") if m]
        if models:
            report["multilingual"] = bench_multilingual(models, args.texts, repeat=100)
            print(json.dumps(report["multilingual"], indent=2), flush=True)
    if args.part in ("indexes", "all"):
        sizes = [int(s) for s in args.sizes.split(",") if s]
        report["indexes"] = bench_indexes(
            sizes, args.queries, not args.no_txtai, synthetic=args.synthetic
        )
    if args.part in ("e2e", "all"):
        report["e2e"] = bench_end_to_end(
            args.queries, backends, not args.no_txtai, args.corpus_backend
        )
        print(json.dumps(report["e2e"], indent=2), flush=True)
    if args.part in ("build", "all"):
        report["build"] = bench_build(args.build_docs, not args.no_txtai)
        print(json.dumps(report["build"], indent=2), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"JSON: {args.json}")
    return 0


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and library versions, for RESULTS.md."""
    import os
    import platform

    import faiss
    import torch

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(ln.split()[1]) // 1024 // 1024
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    flags = next(
        (
            set(ln.split(":", 1)[1].split())
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("flags")
        ),
        set(),
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "cpu": cpu,
        # The int8 kernels need VNNI to pay, and the same machine kind has come with and
        # without it (RESULTS.md): say which one a report came from.
        "cpu_features": sorted(f for f in flags if f.startswith(("avx", "amx"))),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
