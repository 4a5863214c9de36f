"""Batch embedding on Ray: documents per second with 1, 2, … workers against one process.

Reads the first ``--docs`` SBIR abstracts of a BEIR corpus (title. text, as every system sees
a document), encodes them once in this process with the engine's encoder (all cores, and one
thread), then on a fresh local Ray cluster per worker count (each worker an actor with one
encoder and one thread), the way ``matcher embed`` does (``matcher.embed.ray_batch``), into an
in-memory cache. Reports docs/s (actor start and model load included; the cluster's own start
is reported apart), the speed-up over one process, and the largest difference between the
vectors Ray gave and one process's.

    python -m benchmarks.ray_embed [--docs 1000] [--workers 1,2] [--batch-size 64] [--json out]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.beir import SHARED
from matcher.config import Settings
from matcher.embed import content_hash
from matcher.embed.ray_batch import Space, encode_on_ray, load_encoder, prepare
from matcher.embed.ray_cluster import RayOptions, ray_cluster

CORPUS = SHARED / "sbir-dev" / "corpus.jsonl"


@dataclass
class Row:
    """One way of encoding the documents."""

    how: str
    workers: int
    seconds: float
    docs_per_s: float
    speedup: float = 1.0
    start_s: float = 0.0  # the Ray cluster's own start
    max_abs_diff: float = 0.0  # against one process (all cores)


def read_docs(path: Path, n: int) -> list[str]:
    """The first ``n`` documents of a BEIR corpus as ``title. text``."""
    out: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            doc = json.loads(line)
            title = (doc.get("title") or "").strip()
            out.append(f"{title}. {doc['text']}" if title else doc["text"])
            if len(out) == n:
                break
    return out


def one_process(space: Space, docs: Sequence[str], threads: int) -> tuple[float, np.ndarray]:
    """Seconds to encode the documents in this process, and the vectors."""
    encoder = load_encoder(space, threads)
    encoder.encode(docs[:8])  # warm-up: first-call allocations are not the steady state
    started = time.perf_counter()
    vectors = encoder.encode(docs)
    return time.perf_counter() - started, vectors


def on_ray(
    space: Space, docs: Sequence[str], workers: int, batch_size: int
) -> tuple[float, float, dict[str, np.ndarray]]:
    """(cluster start seconds, encode seconds, hash → vector) on a fresh local cluster."""
    todo = {content_hash(d): d for d in docs}
    got: dict[str, np.ndarray] = {}
    options = RayOptions(workers=workers, batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="tm-ray-bench-") as root:
        options.temp_root = Path(root)
        started = time.perf_counter()
        with ray_cluster(options) as ray:
            up = time.perf_counter() - started
            started = time.perf_counter()
            encode_on_ray(ray, todo, space, options=options, write=got.update, progress=True)
            seconds = time.perf_counter() - started
    return up, seconds, got


def run(docs: Sequence[str], worker_counts: Sequence[int], batch_size: int) -> list[Row]:
    """Every row of the table: one process (all cores, one thread), then Ray per worker count."""
    settings = Settings()
    space = Space.of(
        settings.encoder_id,
        settings.model,
        settings.encoder_backend,
        batch_size=settings.batch_size,
        models_dir=settings.models_dir,
    )
    prepare(space)
    n = len(docs)
    cores = os.cpu_count() or 1
    base_s, reference = one_process(space, docs, cores)
    rows = [Row(f"one process, {cores} threads", 1, base_s, n / base_s)]
    single_s, _ = one_process(space, docs, 1)
    rows.append(Row("one process, 1 thread", 1, single_s, n / single_s, base_s / single_s))
    hashes = [content_hash(d) for d in docs]
    for workers in worker_counts:
        up, seconds, got = on_ray(space, docs, workers, batch_size)
        vectors = np.stack([got[h] for h in hashes])
        rows.append(
            Row(
                f"Ray, {workers} x 1 thread",
                workers,
                seconds,
                n / seconds,
                base_s / seconds,
                up,
                float(np.abs(vectors - reference).max()),
            )
        )
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    out = [
        "| how | docs/s | seconds | vs one process | Ray start s | max abs diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        start = f"{r.start_s:.1f}" if r.start_s else "–"
        diff = f"{r.max_abs_diff:.1e}" if r.how.startswith("Ray") else "–"
        out.append(
            f"| {r.how} | {r.docs_per_s:.1f} | {r.seconds:.1f} | {r.speedup:.2f}× | {start} "
            f"| {diff} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_embed", description=__doc__)
    parser.add_argument("--docs", type=int, default=1000, help="documents to encode")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per actor call")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a BEIR corpus.jsonl")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"error: {args.corpus} not found (the shared benchmark data)", file=sys.stderr)
        return 2
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    docs = read_docs(args.corpus, args.docs)
    load_before = os.getloadavg()
    rows = run(docs, worker_counts, args.batch_size)
    load_after = os.getloadavg()
    print(f"\n{len(docs)} documents of {args.corpus}; batch size {args.batch_size}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)\n")
    print(table(rows))
    if args.json:
        payload = {"docs": len(docs), "load": [load_before, load_after]}
        payload["rows"] = [asdict(r) for r in rows]
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
