"""Can one request stall the service? Search latency alone and while oversized input arrives.

Serves the demo data (real model, real server over a socket), runs the same free-text searches
twice from one client, the second time while another client keeps sending (``--gap`` seconds
apart) what the access report used to stall the service with: a 1.1 MB JSON body, a need with
50,000 domain codes, a 900 KB keyword. Reports search p50/p95 in both runs, how fast each
oversized request was refused and with which status.

    python -m benchmarks.stall --searches 200 [--gap 0.1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.load import percentile, serve

API = "/api/v1"
QUERIES = [
    "solid-state battery electrolyte for electric buses",
    "antifouling coating for ship hulls without biocides",
    "machine vision inspection of weld seams",
    "low-cost hydrogen electrolyser membrane",
    "radar sensor for driver fatigue detection",
    "biodegradable packaging film from starch",
    "SiC power module for traction inverters",
    "精密减速器 工业机器人",
]
HOSTILE: dict[str, Callable[[httpx.Client], httpx.Response]] = {
    "1.1 MB body": lambda http: http.post(
        f"{API}/technologies",
        content=b'{"title": "' + b"k" * 1_100_000 + b'"}',
        headers={"content-type": "application/json"},
    ),
    "50,000 domain codes": lambda http: http.post(
        f"{API}/needs",
        json={"title": "Many codes", "description": "x" * 40, "domains": ["04"] * 50_000},
    ),
    "900 KB keyword": lambda http: http.post(
        f"{API}/technologies", json={"title": "t", "keywords": ["k" * 900_000]}
    ),
}


def search_latencies(url: str, token: str, n: int) -> list[float]:
    """Milliseconds of ``n`` searches, one after another (all must answer 200)."""
    out = []
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": token}) as http:
        for i in range(n):
            started = time.perf_counter()
            answer = http.post(f"{API}/search", json={"text": QUERIES[i % len(QUERIES)]})
            out.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                raise RuntimeError(f"search answered {answer.status_code}: {answer.text[:200]}")
    return out


def hostile_loop(
    url: str, token: str, stop: threading.Event, seen: list[dict[str, Any]], gap_s: float
) -> None:
    """Send the oversized requests in turn, ``gap_s`` apart, until told to stop (at most 300)."""
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": token}) as http:
        while not stop.is_set() and len(seen) < 300:
            for name, send in HOSTILE.items():
                started = time.perf_counter()
                answer = send(http)
                ms = (time.perf_counter() - started) * 1000
                seen.append({"request": name, "status": answer.status_code, "ms": ms})
                stop.wait(gap_s)


def spread(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"p50_ms": percentile(ordered, 50), "p95_ms": percentile(ordered, 95)}


def measure(engine: Any, searches: int, gap_s: float = 0.1) -> dict[str, Any]:
    from api.config import ApiSettings
    from api.main import create_app
    from benchmarks.load import issue_tokens

    admin, _ = issue_tokens(engine, 0)
    token = f"Bearer {admin}"
    settings = ApiSettings(token_rate="100000/minute", background_matching=False)
    with serve(create_app(engine, settings)) as server:
        search_latencies(server.url, token, 10)  # warm-up
        alone = search_latencies(server.url, token, searches)
        stop, seen = threading.Event(), []
        hostile = threading.Thread(target=hostile_loop, args=(server.url, token, stop, seen, gap_s))
        hostile.start()
        under = search_latencies(server.url, token, searches)
        stop.set()
        hostile.join(120)
    refused: dict[str, dict[str, Any]] = {}
    for name in HOSTILE:
        mine = [s for s in seen if s["request"] == name]
        refused[name] = {
            "sent": len(mine),
            "statuses": sorted({s["status"] for s in mine}),
            "p50_ms": percentile(sorted(s["ms"] for s in mine), 50),
            "max_ms": max((s["ms"] for s in mine), default=0.0),
        }
    return {
        "searches": searches,
        "gap_s": gap_s,
        "alone": spread(alone),
        "under_oversized_input": spread(under),
        "refused": refused,
    }


def table(report: dict[str, Any]) -> str:
    a, u = report["alone"], report["under_oversized_input"]
    lines = [
        f"| searches ({report['searches']} each) | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| alone | {a['p50_ms']:.1f} | {a['p95_ms']:.1f} |",
        f"| while oversized requests arrive, one every {report['gap_s']} s "
        f"| {u['p50_ms']:.1f} | {u['p95_ms']:.1f} |",
        "",
        "| oversized request | sent | status | p50 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["refused"].items():
        statuses = ", ".join(map(str, r["statuses"]))
        lines.append(
            f"| {name} | {r['sent']} | {statuses} | {r['p50_ms']:.1f} | {r['max_ms']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stall", description=__doc__)
    parser.add_argument("--searches", type=int, default=200, help="searches per run (1–2000)")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.1,
        help="seconds between oversized requests (0.1: the default per-token limit, 600/minute;"
        " 0: a flood no token is allowed)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.searches <= 2000:
        parser.error("--searches must be between 1 and 2000")
    from matcher.config import Settings
    from matcher.engine import Engine

    with tempfile.TemporaryDirectory(prefix="techmatch-stall-") as tmp:
        print(f"loading the demo data into {tmp} …", file=sys.stderr)
        engine = Engine(Settings(home=Path(tmp), progress=False))
        try:
            engine.load_demo()
            report = measure(engine, args.searches, max(0.0, args.gap))
        finally:
            engine.close()
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
