"""Writes at scale: how long until a write is searchable, and searches under a stream of writes.

A catalogue of N synthetic technologies (random field words, some Chinese; a stand-in encoder
that hashes words into 256 dimensions, so the figures are the indexes' and the store's, not the
model's), then:

- write-to-visible: one new technology saved through the engine, then searched for by a word
  only it has, until the search finds it (``--writes`` times);
- search latency alone and while a writer saves one technology every ``--write-every`` seconds;
- memory: the process's resident memory before and after the in-memory view is built, per record.

``--view-records`` measures the view alone at sizes where saving through the engine would take
too long (1M): the synthetic rows go into the store with one bulk insert (no vectors, no
indexes), then the view (its rows and its lexical index) is built and measured.

    python -m benchmarks.incremental --records 10000,100000 [--json out.json]
    python -m benchmarks.incremental --view-records 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.load import percentile

FIELD_WORDS = [
    "graphene",
    "coating",
    "battery",
    "electrolyte",
    "cathode",
    "anode",
    "radar",
    "sensor",
    "chip",
    "laser",
    "optical",
    "fiber",
    "membrane",
    "hydrogen",
    "catalyst",
    "polymer",
    "composite",
    "turbine",
    "blade",
    "corrosion",
    "welding",
    "robot",
    "vision",
    "inspection",
    "drone",
    "satellite",
    "antenna",
    "vaccine",
    "enzyme",
    "biomarker",
    "implant",
    "ceramic",
    "alloy",
    "magnet",
    "inverter",
    "semiconductor",
    "wafer",
    "lithography",
    "sensor",
    "fusion",
    "navigation",
    "acoustic",
    "thermal",
    "storage",
    "desalination",
    "filtration",
    "fermentation",
    "packaging",
    "starch",
    "biodegradable",
    "adhesive",
    "lubricant",
]
CHINESE = [
    "石墨烯",
    "涂层",
    "电池",
    "电解质",
    "雷达",
    "芯片",
    "激光",
    "光纤",
    "氢能",
    "催化剂",
    "复合材料",
    "机器人",
    "检测",
]


def synthetic(i: int, rng: random.Random) -> dict[str, Any]:
    words = rng.choices(FIELD_WORDS, k=40) + (rng.choices(CHINESE, k=6) if i % 10 == 0 else [])
    return {
        "id": f"T-{i:07d}",
        "title": " ".join(words[:6]),
        "description": " ".join(words),
        "owner": f"Institute {i % 500}",
        "domains": ["01"],
        "trl": 1 + i % 9,
        "region": "CN-SH",
    }


def rss_mib() -> float:
    """Resident memory of this process now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def searched(engine: Any, text: str) -> list[str]:
    return [m.technology_ref for m in engine.match_text(text)]


def measure(records: int, writes: int, write_every_s: float, seed: int = 0) -> dict[str, Any]:
    from matcher.config import Settings
    from matcher.domain import TechnologyIn
    from matcher.engine import Engine
    from tests.unit.fakes import FakeEncoder

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="techmatch-incremental-") as tmp:
        settings = Settings(home=Path(tmp), progress=False, multilingual_model="off")
        engine = Engine(settings, encoder=FakeEncoder())
        follower = None
        try:
            started = time.perf_counter()
            for start in range(0, records, 5000):
                batch = [
                    TechnologyIn(**synthetic(i, rng))
                    for i in range(start, min(records, start + 5000))
                ]
                engine.save_records("technologies", batch)
            load_s = time.perf_counter() - started
            follower = following(engine, settings)  # as the service runs: checkpoints
            before = rss_mib()
            started = time.perf_counter()
            engine.view("technologies")
            view_s = time.perf_counter() - started
            view_mib = rss_mib() - before
            visible: list[float] = []
            for n in range(writes):
                word = f"uniqueword{n}x"
                fresh = synthetic(records + n, rng)
                fresh["description"] += f" {word}"
                started = time.perf_counter()
                engine.save_records("technologies", [TechnologyIn(**fresh)])
                while fresh["id"] not in searched(engine, word):
                    if time.perf_counter() - started > 600:
                        raise RuntimeError("a write was not searchable after 10 minutes")
                visible.append((time.perf_counter() - started) * 1000)
            queries = [" ".join(rng.choices(FIELD_WORDS, k=8)) for _ in range(100)]
            alone = [timed(engine, q) for q in queries]
            stop = threading.Event()
            writer = threading.Thread(
                target=write_stream, args=(engine, stop, write_every_s, records + writes, rng)
            )
            writer.start()
            under = [timed(engine, q) for q in queries]
            stop.set()
            writer.join(600)
        finally:
            if follower is not None:
                follower.stop()
            engine.close()
    return {
        "records": records,
        "load_s": load_s,
        "view_build_s": view_s,
        "view_mib": view_mib,
        "view_bytes_per_record": view_mib * 2**20 / records,
        "write_to_visible_ms": spread(visible),
        "search_alone_ms": spread(alone),
        "search_under_writes_ms": spread(under),
        "write_every_s": write_every_s,
    }


def view_only(records: int, seed: int = 0) -> dict[str, Any]:
    """The view's build time and resident memory per record over ``records`` bulk-inserted
    synthetic technologies."""
    from sqlalchemy import insert

    from matcher.config import Settings
    from matcher.engine import Engine
    from matcher.store.models import TechnologyRow
    from tests.unit.fakes import FakeEncoder

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="techmatch-view-") as tmp:
        settings = Settings(home=Path(tmp), progress=False, multilingual_model="off")
        engine = Engine(settings, encoder=FakeEncoder())
        try:
            started = time.perf_counter()
            for start in range(0, records, 20_000):
                rows = []
                for i in range(start, min(records, start + 20_000)):
                    row = synthetic(i, rng)
                    row["ref"] = row.pop("id")
                    rows.append({**row, "content_hash": f"{i:064x}"})
                with engine.sessions.begin() as session:
                    session.execute(insert(TechnologyRow), rows)
            load_s = time.perf_counter() - started
            before = rss_mib()
            started = time.perf_counter()
            view = engine.view("technologies")
            view_s = time.perf_counter() - started
            view_mib = rss_mib() - before
            assert len(view.rows) == records == len(view.lexical)
        finally:
            engine.close()
    return {
        "records": records,
        "load_s": load_s,
        "view_build_s": view_s,
        "view_mib": view_mib,
        "view_bytes_per_record": view_mib * 2**20 / records,
    }


def following(engine: Any, settings: Any) -> Any:
    """The service's change follower on this engine (None on code that has none)."""
    try:
        from matcher.follow import ChangeFollower
    except ImportError:
        return None
    follower = ChangeFollower(engine.catalog, settings.index_dir)
    follower.start()
    return follower


def timed(engine: Any, query: str) -> float:
    started = time.perf_counter()
    engine.match_text(query)
    return (time.perf_counter() - started) * 1000


def write_stream(
    engine: Any, stop: threading.Event, every_s: float, first: int, rng: random.Random
) -> None:
    from matcher.domain import TechnologyIn

    n = first
    while not stop.is_set() and n < first + 10_000:
        engine.save_records("technologies", [TechnologyIn(**synthetic(n, rng))])
        n += 1
        stop.wait(every_s)


def spread(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"p50": percentile(ordered, 50), "p95": percentile(ordered, 95), "max": ordered[-1]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.incremental", description=__doc__)
    parser.add_argument("--records", default="10000", help="catalogue sizes, comma-separated")
    parser.add_argument("--writes", type=int, default=10, help="writes timed to visible")
    parser.add_argument("--write-every", type=float, default=0.1, help="write stream period, s")
    parser.add_argument("--view-records", help="measure only the view at these sizes")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.view_records:
        views = []
        for n in [int(x) for x in args.view_records.split(",")]:
            print(f"{n:,} records, the view alone …", file=sys.stderr)
            views.append(view_only(n))
            v = views[-1]
            print(
                f"| {n:,} | {v['view_bytes_per_record']:.0f} | {v['view_mib']:.0f}"
                f" | {v['view_build_s']:.1f} |"
            )
        if args.json:
            args.json.write_text(json.dumps(views, indent=2), encoding="utf-8")
        return 0
    sizes = [int(x) for x in args.records.split(",")]
    if any(not 1 <= n <= 1_000_000 for n in sizes) or not 1 <= args.writes <= 100:
        parser.error("--records between 1 and 1,000,000; --writes between 1 and 100")
    reports = []
    for n in sizes:
        print(f"{n:,} records …", file=sys.stderr)
        reports.append(measure(n, args.writes, args.write_every))
        r = reports[-1]
        visible = r["write_to_visible_ms"]
        print(
            f"| {n:,} | {visible['p50']:.0f} / {visible['p95']:.0f}"
            f" | {r['search_alone_ms']['p95']:.1f} | {r['search_under_writes_ms']['p95']:.1f}"
            f" | {r['view_bytes_per_record']:.0f} | {r['view_build_s']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
