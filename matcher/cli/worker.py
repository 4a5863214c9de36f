"""``matcher worker``: run background jobs (matching, routing, webhook deliveries)."""

from __future__ import annotations

import logging
import signal
from typing import Annotated, Any

import typer

from matcher.cli.common import fail, open_engine
from matcher.follow import ChangeFollower


def worker(
    queues: Annotated[
        str,
        typer.Option(
            "--queues", "-q", help="comma-separated: matching, webhooks, maintenance (all)"
        ),
    ] = "matching,webhooks,maintenance",
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="jobs at once per queue")
    ] = 1,
) -> None:
    """Work through the background jobs until stopped (SIGTERM or Ctrl-C): procrastinate on
    PostgreSQL, the store's jobs table on SQLite. Run as many as you like, anywhere the
    store is reachable."""
    from matcher.jobs import QUEUES, Workers

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown or not chosen:
        fail(f"unknown queue(s) {', '.join(unknown) or '(none)'}; queues are {', '.join(QUEUES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engine = open_engine()
    # the indexes follow every process's writes (a need's matches see the newest technologies)
    follower = ChangeFollower(engine.catalog, engine.settings.index_dir, files=engine.files)
    follower.start()
    workers = Workers(engine, queues=chosen, concurrency=concurrency)

    def stop(signum: int, frame: Any) -> None:
        workers.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"worker: {workers.backend} queue, queues {', '.join(chosen)}", err=True)
    workers.start()
    try:
        workers.wait()
    finally:
        workers.stop()
        follower.stop()
        engine.close()
