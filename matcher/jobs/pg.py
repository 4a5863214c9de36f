"""The PostgreSQL queue: procrastinate 3.10 (its schema comes with our migrations).

A job is deferred on the caller's own connection, inside the write's transaction
(``configure_task(..., connection=...)``), by a task-less app that is never opened; workers
run a second app that owns the tasks, their back-off, and a periodic sweep that puts the jobs
of workers whose heartbeat stopped (kill -9) back in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from matcher.jobs.handlers import HANDLERS, Runtime
from matcher.jobs.kinds import KINDS, MAINTENANCE, WEBHOOKS, Kind, Run
from matcher.jobs.queue import conninfo, settings

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


class Backoff(BaseRetryStrategy):
    """Exponential back-off from the job settings: ``base * 2 ** (try - 1)`` seconds."""

    def __init__(self, spec: Kind) -> None:
        self.spec = spec

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        job_settings, tried = settings(), job.attempts + 1
        if tried >= self.spec.attempts(job_settings):
            return None
        wait = job_settings.backoff(self.spec.backoff_s(job_settings), tried)
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=wait))


def _runner(spec: Kind) -> Any:
    def run(context: Any, **args: Any) -> None:
        assert _runtime is not None, "no worker runtime bound"
        tries = spec.attempts(_runtime.settings)
        HANDLERS[spec.name](_runtime, args, Run(context.job.attempts + 1, tries))

    run.__name__ = spec.name
    return run


def worker_app(url: str) -> procrastinate.App:
    """The app workers run: every kind of job as a task, and the stalled-job sweep."""
    job_settings = settings()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))
    for spec in KINDS.values():
        app.task(name=spec.name, queue=spec.queue, retry=Backoff(spec), pass_context=True)(
            _runner(spec)
        )
    stalled_after = 3 * job_settings.heartbeat_s

    async def sweep_stalled(context: Any, timestamp: int) -> None:
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
            log.warning(
                "job %s (%s) stalled: its worker stopped; queued again", job.id, job.task_name
            )
            await manager.retry_job(job)

    every = max(1, job_settings.sweep_every_s)
    sweep = app.task(
        name="sweep_stalled", queue=MAINTENANCE, queueing_lock="sweep_stalled", pass_context=True
    )(sweep_stalled)
    app.periodic(cron=f"*/{every} * * * * *", periodic_id="sweep_stalled")(sweep)
    return app


def run(rt: Runtime, queues: Sequence[str], *, concurrency: int, stop: threading.Event) -> None:
    """Run workers for these queues until ``stop`` is set: the webhooks queue gets a worker of
    its own, so deliveries never take the slots of matching."""
    global _runtime
    _runtime = rt
    app = worker_app(rt.engine.db.url.render_as_string(hide_password=False))
    hb = rt.settings.heartbeat_s
    groups = [[q for q in queues if q != WEBHOOKS], [q for q in queues if q == WEBHOOKS]]
    options: dict[str, Any] = dict(
        wait=True,
        install_signal_handlers=False,
        update_heartbeat_interval=hb,
        stalled_worker_timeout=3 * hb,
        delete_jobs="successful",
        listen_notify=True,
        fetch_job_polling_interval=rt.settings.poll_s,
        concurrency=max(1, concurrency),
    )

    async def main() -> None:
        async with app.open_async():
            tasks = [
                asyncio.create_task(
                    app.run_worker_async(queues=group, name=f"{os.getpid()}-{i}", **options)
                )
                for i, group in enumerate(groups)
                if group
            ]
            while not stop.is_set() and not all(t.done() for t in tasks):
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
