"""``python -m benchmarks.index_pq``: the compressed index (IVF-PQ + exact re-ranking) at scale.

Measures, per collection size: RAM per vector (from the index: FAISS serialised codes and lists
plus the id -> row map; and the process's anonymous memory growth while building), recall@10
against exact search, single-query latency, and the nprobe sweep; HNSW beside it for the sizes
where the `auto` threshold is chosen. Vectors: synthetic (``clustered_vectors``, calibrated to
real MiniLM statistics; held-out vectors as queries) and the real SBIR award abstracts that the
benchmark embedding cache holds (``--encode`` fills it first; ~50 docs/s on two idle cores),
searched by real SBIR topic statements.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.cache import OUT
from matcher.index import HNSWIndex, IVFPQIndex, load_index, save_index

_CHUNK = 100_000


def clustered_vectors(n: int, dim: int = 384, *, seed: int = 0, growth: float = 0.55) -> np.ndarray:
    """n unit vectors shaped like MiniLM sentence embeddings (synthetic).

    A three-level Gaussian mixture (topics, sub-topics, the vector) around a shared direction,
    every level drawn with a power-law spectrum in a random basis; the number of topics and
    sub-topics grows as n**growth, so a larger catalogue is both wider and denser, as real ones
    are. Fitted on the real MiniLM vectors of SBIR award abstracts (synthetic / real), held-out
    abstracts as queries. At 4,352: mean-vector norm 0.30 / 0.32; leading covariance eigenvalues
    0.067, 0.021, 0.0081 / 0.045, 0.021, 0.0086; mean cosine to the 1st, 10th, 100th neighbour
    0.58, 0.44, 0.31 / 0.62, 0.48, 0.35. What matters for an inverted file, IVF-Flat recall@10
    with 4*sqrt(n) lists: at 4,352, nprobe 2, 4, 8, 16: 0.68, 0.81, 0.90, 0.95 / 0.67, 0.82,
    0.92, 0.97; at 12,544, nprobe 4 to 64: 0.86, 0.91, 0.95, 0.97, 0.98 / 0.78, 0.89, 0.95,
    0.98, 0.99; at 22,870, nprobe 8 to 128: 0.93, 0.96, 0.98, 0.99, 0.995 / 0.88, 0.94, 0.97,
    0.99, 0.999. growth 0.7 was harder than the real vectors at 22,870 (0.96 at nprobe 64).
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -0.4
    spectrum = (spectrum / np.sqrt((spectrum**2).sum())).astype(np.float32)

    def draw(count: int, variance: float) -> np.ndarray:
        gauss = rng.standard_normal((count, dim), dtype=np.float32) * spectrum
        return (gauss @ basis.T) * np.float32(np.sqrt(variance))

    shared = rng.standard_normal(dim).astype(np.float32)
    shared *= 0.3 / np.linalg.norm(shared)
    scale = (n / 4_352) ** growth
    n_topics, n_leaves = max(1, round(22 * scale)), max(1, round(435 * scale))
    topics = draw(n_topics, 0.15)
    leaves = topics[rng.integers(0, n_topics, n_leaves)] + draw(n_leaves, 0.3)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        part = shared + leaves[rng.integers(0, n_leaves, count)] + draw(count, 0.55)
        out[start : start + count] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def real_vectors(*, encode: bool, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM (onnx) vectors of the SBIR award abstracts that the benchmark cache holds, and of
    the first ``queries`` SBIR topic statements (needs searching technologies)."""
    from benchmarks.cache import bench_cache, embed
    from benchmarks.speed import award_text, load_awards, load_topics
    from matcher.embed import content_hash, encode_queries, get_encoder

    texts = list(dict.fromkeys(award_text(r) for r in load_awards()))
    encoder = get_encoder(backend="onnx")
    if encode:
        embed(encoder, texts, progress=True)
    cached = bench_cache().get_many(encoder.name, [content_hash(t) for t in texts])
    found = [cached[h] for h in (content_hash(t) for t in texts) if h in cached]
    corpus = np.stack(found).astype(np.float32) if found else np.empty((0, 384), np.float32)
    return corpus, encode_queries(encoder, load_topics(queries)).astype(np.float32)


def rss_anon_mb() -> float:
    """Anonymous resident memory of this process in MiB (file-backed page cache excluded)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k found."""
    hits = sum(len(set(f) & set(e)) for f, e in zip(found.tolist(), exact.tolist(), strict=True))
    return round(hits / exact.size, 4)


def latency(index: Any, queries: np.ndarray) -> dict[str, float]:
    """Single-query p50 / p95 in ms over the queries (after 5 warm-up searches)."""
    for q in queries[:5]:
        index.search(q.reshape(1, -1), 10)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q.reshape(1, -1), 10)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
    }


def measure_pq(
    vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray, nprobes: Sequence[int]
) -> dict[str, Any]:
    """Build an IVF-PQ index over vectors and measure it; save/load it once (timed)."""
    ids = np.arange(len(vectors), dtype=np.int64)
    gc.collect()
    before = rss_anon_mb()
    t0 = time.perf_counter()
    index = IVFPQIndex(vectors.shape[1])
    for start in range(0, len(vectors), _CHUNK):  # as a catalogue import arrives
        index.add(ids[start : start + _CHUNK], vectors[start : start + _CHUNK])
    build = time.perf_counter() - t0
    gc.collect()
    row: dict[str, Any] = {
        "kind": "ivfpq",
        "n": len(vectors),
        "build_s": round(build, 1),
        "bytes_per_vector": round(index.ram_bytes / len(index), 1),
        "anon_mib": round(rss_anon_mb() - before, 1),
        "params": index.params,
        "nlist": index.trained_nlist,
    }
    default_rerank = index.rerank
    index.rerank = 10  # the codes alone decide the top 10
    row["recall@10_codes_only"] = recall_at(index.search(queries, 10)[1], exact)
    index.rerank = default_rerank
    row["recall@10"] = recall_at(index.search(queries, 10)[1], exact)
    row["single"] = latency(index, queries)
    default_nprobe, default_fraction, sweep = index.nprobe, index.probe_fraction, []
    index.probe_fraction = 0.0  # the sweep sets the lists probed exactly
    for nprobe in nprobes:
        index.nprobe = nprobe
        found = index.search(queries, 10)[1]
        point = {"nprobe": nprobe, "recall@10": recall_at(found, exact)}
        sweep.append(point | latency(index, queries))
    index.nprobe, index.probe_fraction = default_nprobe, default_fraction
    row["sweep"] = sweep
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="index-pq-", dir=OUT) as tmp:
        t0 = time.perf_counter()
        save_index(index, Path(tmp) / "idx", model="bench")
        row["save_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        loaded, _ = load_index(Path(tmp) / "idx")
        row["load_s"] = round(time.perf_counter() - t0, 2)
        row["reload_same"] = bool(
            np.array_equal(loaded.search(queries[:50], 10)[1], index.search(queries[:50], 10)[1])
        )
    return row


def measure_hnsw(vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> dict[str, Any]:
    """The engine's HNSW (default parameters) over the same vectors, for the auto threshold."""
    gc.collect()
    before = rss_anon_mb()
    t0 = time.perf_counter()
    index = HNSWIndex(vectors.shape[1])
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    build = time.perf_counter() - t0
    gc.collect()
    return {
        "kind": "hnsw",
        "n": len(vectors),
        "build_s": round(build, 1),
        "anon_mib": round(rss_anon_mb() - before, 1),
        "recall@10": recall_at(index.search(queries, 10)[1], exact),
        "single": latency(index, queries),
    }


def run_size(
    vectors: np.ndarray, queries: np.ndarray, *, label: str, hnsw: bool, nprobes: Sequence[int]
) -> list[dict[str, Any]]:
    """Exact top 10 by brute force, then IVF-PQ (and HNSW) rows for one vector set."""
    faiss.omp_set_num_threads(0)  # exact ground truth: every core
    exact = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]
    faiss.omp_set_num_threads(1)  # the engine searches with one thread (faiss_threads)
    rows = [measure_pq(vectors, queries, exact, nprobes) | {"vectors": label}]
    print(json.dumps(rows[-1]), flush=True)
    if hnsw:
        rows.append(measure_hnsw(vectors, queries, exact) | {"vectors": label})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of the rows."""
    lines = [
        "| vectors | n | index | build s | RAM B/vector (index) | anon RSS MiB | "
        "recall@10 codes only | recall@10 | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['vectors']} | {r['n']:,} | {r['kind']} | {r['build_s']} | "
            f"{r.get('bytes_per_vector', '–')} | {r['anon_mib']} | "
            f"{r.get('recall@10_codes_only', '–')} | {r['recall@10']} | "
            f"{r['single']['p50_ms']} | {r['single']['p95_ms']} |"
        )
    sweeps = [r for r in rows if "sweep" in r]
    if sweeps:
        lines += ["", "| vectors | n | nprobe: recall@10 / p50 ms |", "|---|---|---|"]
        for r in sweeps:
            points = "; ".join(
                f"{p['nprobe']}: {p['recall@10']} / {p['p50_ms']}" for p in r["sweep"]
            )
            lines.append(f"| {r['vectors']} | {r['n']:,} | {points} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.index_pq", description=__doc__)
    parser.add_argument("--sizes", default="100000,300000,1000000", help="synthetic sizes")
    parser.add_argument("--hnsw-sizes", default="100000", help="also measured with HNSW")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--nprobes", default="32,64,128,256,512")
    parser.add_argument("--no-real", action="store_true", help="skip the real SBIR abstracts")
    parser.add_argument("--encode", action="store_true", help="embed missing abstracts first")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    nprobes = [int(x) for x in args.nprobes.split(",") if x]
    hnsw_sizes = {int(x) for x in args.hnsw_sizes.split(",") if x}
    rows: list[dict[str, Any]] = []
    if not args.no_real:
        corpus, queries = real_vectors(encode=args.encode, queries=args.queries)
        if len(corpus) < 10_000:
            print(f"only {len(corpus)} abstracts cached; run with --encode", file=sys.stderr)
        rows += run_size(
            corpus, queries, label="real: SBIR abstracts, topic queries", hnsw=True, nprobes=nprobes
        )
    for n in (int(x) for x in args.sizes.split(",") if x):
        data = clustered_vectors(n + args.queries, seed=n)
        rows += run_size(
            data[args.queries :],
            data[: args.queries],
            label="synthetic (clustered)",
            hnsw=n in hnsw_sizes,
            nprobes=nprobes,
        )
        del data
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
