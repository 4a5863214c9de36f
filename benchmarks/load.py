"""Bounded load test of the HTTP service: concurrent searches, inbox reads and need submissions.

    python -m benchmarks.load --serve --clients 50 --seconds 30
    python -m benchmarks.load --url http://127.0.0.1:8000 --admin-token tm_a_… --clients 20

``--serve`` starts its own server (uvicorn, real sockets) on a copy of the demo data in a
temporary directory and issues its own tokens. Against ``--url`` (127.0.0.1 only) give an admin
token (submissions, and broker tokens issued for the inbox reads) and/or ``--broker-token``.

Reports count, throughput and p50/p95/p99 latency per kind and the number of 5xx answers (must
be 0), then checks that every accepted submission is stored and indexed (health counts and one
GET per submitted need).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from api.serve import SERVER_OPTIONS

API = "/api/v1"
MAX_CLIENTS = 200
MAX_SECONDS = 600
LOCAL_HOSTS = ("127.0.0.1", "localhost")
KINDS = ("search", "inbox", "submit")

QUERIES = [
    "static analysis of interrupt concurrency bugs in automotive embedded software",
    "gate oxide process for silicon carbide MOSFET threshold stability",
    "corrosion resistant coating for offshore wind turbine towers",
    "low cost sodium ion battery cathode material",
    "machine vision inspection of weld seams on production lines",
    "biodegradable packaging film from agricultural waste",
    "wastewater treatment membrane with low fouling",
    "钙钛矿太阳能电池 稳定性",
]
NEED_TEMPLATES = [
    {
        "title": "Detect concurrency faults in embedded controller software",
        "description": "We build body control modules and need a static analysis tool that "
        "understands interrupt nesting and reports real data races with few false alarms.",
        "domains": ["01.01"],
        "trl_min": 5,
        "region_scope": "national",
        "home_region": "CN-AH",
        "budget_max": 1_500_000,
        "currency": "CNY",
    },
    {
        "title": "Stable gate stack for 1200 V SiC power transistors",
        "description": "Our SiC MOSFETs drift in high-temperature gate bias tests; we look for a "
        "proven gate oxide process that runs on existing furnaces and keeps channel mobility.",
        "domains": ["01.02"],
        "trl_min": 4,
        "trl_max": 7,
        "region_scope": "international",
        "home_region": "CN-ZJ",
        "budget_max": 6_000_000,
        "currency": "CNY",
    },
    {
        "title": "Wear resistant thin film coating for cutting tools",
        "description": "A tool maker needs a hard, low friction coating deposited at moderate "
        "temperature that doubles tool life when machining titanium and nickel alloys.",
        "domains": ["04.06"],
        "trl_min": 6,
        "region_scope": "international",
        "home_region": "DE",
        "budget_max": 400_000,
        "currency": "EUR",
    },
]


# -- results -------------------------------------------------------------------------------
@dataclass
class KindStats:
    kind: str
    count: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    transport_errors: int = 0
    throughput_rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class LoadReport:
    url: str
    clients: int
    seconds: float
    elapsed_s: float = 0.0
    total: int = 0
    throughput_rps: float = 0.0
    errors_5xx: int = 0
    kinds: dict[str, KindStats] = field(default_factory=dict)
    accepted_needs: list[str] = field(default_factory=list)
    skipped_kinds: dict[str, str] = field(default_factory=dict)
    samples_5xx: list[str] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.errors_5xx == 0 and bool(self.verification.get("ok", False))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["accepted_needs"] = len(self.accepted_needs)
        return out

    def table(self) -> str:
        lines = [
            f"load on {self.url}: {self.clients} clients for {self.seconds:g} s "
            f"({self.elapsed_s:.1f} s elapsed)",
            f"{'kind':<8} {'count':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'4xx':>5} {'5xx':>5} {'net':>5}",
        ]
        for s in self.kinds.values():
            lines.append(
                f"{s.kind:<8} {s.count:>7} {s.throughput_rps:>8.1f} {s.p50_ms:>8.1f} "
                f"{s.p95_ms:>8.1f} {s.p99_ms:>8.1f} {s.max_ms:>8.1f} {s.errors_4xx:>5} "
                f"{s.errors_5xx:>5} {s.transport_errors:>5}"
            )
        lines.append(
            f"{'all':<8} {self.total:>7} {self.throughput_rps:>8.1f}   5xx: {self.errors_5xx}"
        )
        for kind, why in self.skipped_kinds.items():
            lines.append(f"skipped {kind}: {why}")
        for sample in self.samples_5xx[:5]:
            lines.append(f"5xx: {sample}")
        v = self.verification
        if v:
            lines.append(
                f"accepted submissions {v.get('accepted')}: stored {v.get('stored')}, "
                f"needs indexed {v.get('needs_before')} → {v.get('needs_after')} "
                f"(expected {v.get('needs_expected')}), technologies "
                f"{v.get('technologies_before')} → {v.get('technologies_after')}"
                + (f", index verify {v['index_verify']}" if "index_verify" in v else "")
                + f": {'OK' if v.get('ok') else 'MISMATCH'}"
            )
        return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


# -- the server ------------------------------------------------------------------------------
def check_local(url: str) -> str:
    """Only 127.0.0.1 is ever loaded."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"refusing to load {url!r}: only http://127.0.0.1:PORT is allowed")
    return url.rstrip("/")


@dataclass
class ServerHandle:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextmanager
def serve(app: Any, *, log_level: str = "warning") -> Iterator[ServerHandle]:
    """Run a real uvicorn server for ``app`` on a free 127.0.0.1 port in a thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a response's second write waits for the
    # client's delayed ACK (~40 ms a request), which asyncio avoids only on sockets it binds.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level=log_level,
        access_log=False,
        backlog=2048,
        **SERVER_OPTIONS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    handle = ServerHandle(f"http://127.0.0.1:{port}", server, thread)
    try:
        yield handle
    finally:
        handle.stop()
        sock.close()


# -- the clients ---------------------------------------------------------------------------
def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def discover(url: str) -> set[str]:
    """``METHOD path`` of every operation the server offers."""
    spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
    return {f"{m.upper()} {p}" for p, ops in spec.get("paths", {}).items() for m in ops}


def issue_broker_tokens(url: str, admin_token: str, how_many: int) -> list[str]:
    """Fresh tokens for up to ``how_many`` brokers in good standing (via the admin API)."""
    with httpx.Client(base_url=url, headers=_auth(admin_token), timeout=30) as http:
        listed = http.get(f"{API}/admin/brokers", params={"certificate": "valid"})
        listed.raise_for_status()
        refs = [b["ref"] for b in listed.json()["items"]][:how_many]
        tokens = []
        for ref in refs:
            response = http.post(f"{API}/admin/brokers/{ref}/tokens")
            response.raise_for_status()
            tokens.append(response.json()["token"])
    return tokens


def _health(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/health", timeout=30)
    response.raise_for_status()
    return response.json()


def _new_need(rng: random.Random) -> dict[str, Any]:
    body = dict(rng.choice(NEED_TEMPLATES))
    body["id"] = f"LOAD-{uuid.uuid4().hex[:12]}"
    body["enterprise"] = f"Load Test Enterprise {rng.randint(1, 999)}"
    return body


def run_load(
    url: str,
    *,
    clients: int,
    seconds: float,
    admin_token: str | None = None,
    broker_tokens: Sequence[str] = (),
    mix: dict[str, float] | None = None,
    seed: int = 0,
    timeout: float = 60.0,
    after: Callable[[], None] | None = None,
) -> LoadReport:
    """Run ``clients`` concurrent clients for ``seconds``; then verify what was accepted.

    ``after`` runs between the load and the verification (e.g. drain a background worker).
    """
    url = check_local(url)
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"--clients must be between 1 and {MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds must be in (0, {MAX_SECONDS}]")
    report = LoadReport(url=url, clients=clients, seconds=seconds)
    ops = discover(url)
    weights = dict(mix or {"search": 0.4, "inbox": 0.4, "submit": 0.2})
    if f"POST {API}/search" not in ops:
        report.skipped_kinds["search"] = "the server has no POST /api/v1/search"
    if f"POST {API}/needs" not in ops:
        report.skipped_kinds["submit"] = "the server has no POST /api/v1/needs"
    elif admin_token is None:
        report.skipped_kinds["submit"] = "no --admin-token"
    if not broker_tokens:
        report.skipped_kinds["inbox"] = "no broker token"
    staff = [*broker_tokens, *([admin_token] if admin_token else [])]
    if not staff:
        report.skipped_kinds["search"] = "no token at all"
    for kind in report.skipped_kinds:
        weights[kind] = 0.0
    if not any(weights.values()):
        raise ValueError("nothing to do: " + "; ".join(report.skipped_kinds.values()))
    kinds = [k for k in KINDS if weights.get(k, 0) > 0]
    before = _health(url)

    lock = threading.Lock()
    results: list[tuple[str, int, float]] = []  # kind, status (0 = transport error), seconds
    accepted: list[str] = []
    samples: list[str] = []
    start = time.monotonic()
    deadline = start + seconds

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        local: list[tuple[str, int, float]] = []
        with httpx.Client(base_url=url, timeout=timeout) as http:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
                submitted = None
                t0 = time.perf_counter()
                try:
                    if kind == "search":
                        response = http.post(
                            f"{API}/search",
                            json={"text": rng.choice(QUERIES), "top": 10},
                            headers=_auth(rng.choice(staff)),
                        )
                    elif kind == "inbox":
                        response = http.get(
                            f"{API}/brokers/me/inbox",
                            params={"limit": 20},
                            headers=_auth(rng.choice(broker_tokens)),
                        )
                    else:
                        body = _new_need(rng)
                        submitted = body["id"]
                        assert admin_token is not None
                        response = http.post(f"{API}/needs", json=body, headers=_auth(admin_token))
                    code = response.status_code
                except httpx.HTTPError as exc:
                    code = 0
                    with lock:
                        samples.append(f"{kind}: {type(exc).__name__}: {exc}")
                elapsed = time.perf_counter() - t0
                local.append((kind, code, elapsed))
                if code >= 500:
                    with lock:
                        samples.append(f"{kind}: HTTP {code} {response.text[:300]}")
                if submitted is not None and code == 201:
                    with lock:
                        accepted.append(submitted)
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.elapsed_s = time.monotonic() - start
    report.accepted_needs = accepted
    report.samples_5xx = samples[:20]
    for kind in kinds:
        mine = [r for r in results if r[0] == kind]
        latencies = sorted(r[2] * 1000 for r in mine)
        report.kinds[kind] = KindStats(
            kind=kind,
            count=len(mine),
            errors_5xx=sum(1 for r in mine if r[1] >= 500),
            errors_4xx=sum(1 for r in mine if 400 <= r[1] < 500),
            transport_errors=sum(1 for r in mine if r[1] == 0),
            throughput_rps=len(mine) / report.elapsed_s,
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            p99_ms=percentile(latencies, 99),
            max_ms=latencies[-1] if latencies else 0.0,
        )
    report.total = len(results)
    report.throughput_rps = report.total / report.elapsed_s
    report.errors_5xx = sum(s.errors_5xx for s in report.kinds.values())
    if after is not None:
        after()
    report.verification = verify(url, before, accepted, admin_token)
    return report


def verify(
    url: str, before: dict[str, Any], accepted: Sequence[str], admin_token: str | None
) -> dict[str, Any]:
    """Every accepted submission is stored (GET finds it) and indexed (health counts add up)."""
    after = _health(url)
    stored = 0
    missing: list[str] = []
    if accepted and admin_token:
        with (
            httpx.Client(base_url=url, headers=_auth(admin_token), timeout=60) as http,
            ThreadPoolExecutor(max_workers=8) as pool,
        ):
            codes = list(pool.map(lambda ref: http.get(f"{API}/needs/{ref}").status_code, accepted))
        stored = sum(code == 200 for code in codes)
        missing = [ref for ref, code in zip(accepted, codes, strict=True) if code != 200]
    expected = before["needs"] + len(accepted)
    return {
        "accepted": len(accepted),
        "stored": stored,
        "missing": missing[:20],
        "needs_before": before["needs"],
        "needs_after": after["needs"],
        "needs_expected": expected,
        "technologies_before": before["technologies"],
        "technologies_after": after["technologies"],
        "ok": (
            stored == len(accepted)
            and after["needs"] == expected
            and after["technologies"] == before["technologies"]
        ),
    }


# -- --serve: a private server on the demo data ----------------------------------------------
def issue_tokens(engine: Any, broker_count: int) -> tuple[str, list[str]]:
    """An admin token and tokens for up to ``broker_count`` brokers in good standing."""
    from datetime import date

    from sqlalchemy import select

    from matcher.store.models import BrokerRow
    from matcher.store.repo.tokens import issue_token

    with engine.sessions() as session:
        admin = issue_token(session, role="admin", label="load test")
        brokers = session.scalars(
            select(BrokerRow)
            .where(BrokerRow.suspended.is_(False), BrokerRow.valid_until >= date.today())
            .order_by(BrokerRow.id)
            .limit(broker_count)
        ).all()
        tokens = [
            issue_token(session, role="broker", broker_id=b.id, label="load") for b in brokers
        ]
        session.commit()
    return admin, tokens


def run_served(
    engine: Any, api_settings: Any, *, clients: int, seconds: float, seed: int = 0
) -> LoadReport:
    """Serve ``engine`` over real sockets, load it, drain the worker, verify (index too)."""
    from api.main import create_app

    admin, tokens = issue_tokens(engine, 8)
    app = create_app(engine, api_settings)
    with serve(app) as handle:
        report = run_load(
            handle.url,
            clients=clients,
            seconds=seconds,
            admin_token=admin,
            broker_tokens=tokens,
            seed=seed,
            after=lambda: app.state.worker.join(),
        )
    checks = [engine.indexes[name].verify() for name in ("technologies", "needs")]
    report.verification["index_verify"] = "ok" if all(c.ok for c in checks) else "DRIFT"
    report.verification["ok"] = report.verification["ok"] and all(c.ok for c in checks)
    return report


def _serve_demo(args: argparse.Namespace) -> LoadReport:
    from api.config import ApiSettings
    from matcher.config import Settings
    from matcher.engine import Engine

    with tempfile.TemporaryDirectory(prefix="techmatch-load-") as tmp:
        print(f"loading the demo data into {tmp} …", file=sys.stderr)
        engine = Engine(Settings(home=Path(tmp), progress=False))
        try:
            engine.load_demo()
            settings = ApiSettings(
                background_matching=not args.inline_matching,
                webhook_retries=1,
                webhook_backoff_s=0.01,
            )
            return run_served(
                engine, settings, clients=args.clients, seconds=args.seconds, seed=args.seed
            )
        finally:
            engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    where.add_argument(
        "--serve", action="store_true", help="start a server on the demo data in a temp dir"
    )
    parser.add_argument("--clients", type=int, default=50, help=f"1–{MAX_CLIENTS}")
    parser.add_argument("--seconds", type=float, default=30.0, help=f"at most {MAX_SECONDS}")
    parser.add_argument("--admin-token", help="admin bearer token (submissions, broker tokens)")
    parser.add_argument(
        "--broker-token", action="append", default=[], help="broker bearer token (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--inline-matching",
        action="store_true",
        help="--serve: match and route inside the submitting request (no background worker)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    try:
        if args.serve:
            report = _serve_demo(args)
        else:
            url = check_local(args.url)
            brokers = list(args.broker_token)
            if not brokers and args.admin_token:
                brokers = issue_broker_tokens(url, args.admin_token, 8)
            report = run_load(
                url,
                clients=args.clients,
                seconds=args.seconds,
                admin_token=args.admin_token,
                broker_tokens=brokers,
                seed=args.seed,
            )
    except (ValueError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
        print(f"JSON: {args.json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
