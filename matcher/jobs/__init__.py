"""Durable background work: match and route a need, re-match after a technology arrives, route
what waits for a broker, deliver webhooks.

``enqueue(session, kind, args, key)`` puts a job on the queue inside the caller's transaction;
``Workers`` runs them. On PostgreSQL the queue is procrastinate (``matcher.jobs.pg``); on the
embedded SQLite store, which no job server supports, it is the store's own ``jobs`` table
(``matcher.jobs.table``). Both retry with back-off and re-run the job of a worker that died.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matcher.jobs.handlers import Runtime
from matcher.jobs.kinds import KINDS, MAINTENANCE, MATCHING, WEBHOOKS
from matcher.jobs.queue import PROCRASTINATE, backend_of, configure, enqueue, settings
from matcher.jobs.settings import JobSettings

if TYPE_CHECKING:
    from matcher.engine import Engine

QUEUES = (MATCHING, WEBHOOKS, MAINTENANCE)
__all__ = ["KINDS", "QUEUES", "JobSettings", "Workers", "configure", "enqueue", "settings"]


class Workers:
    """The workers of one process: ``concurrency`` slots per queue (webhooks apart)."""

    def __init__(
        self,
        engine: Engine,
        *,
        queues: Sequence[str] = QUEUES,
        concurrency: int = 1,
        job_settings: JobSettings | None = None,
    ) -> None:
        if job_settings is not None:
            configure(job_settings)
        self.runtime = Runtime(engine, settings())
        self.queues = [q for q in queues]
        self.concurrency = concurrency
        self.backend = backend_of(engine.db.dialect.name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._table: object | None = None

    def start(self) -> Workers:
        """Start working in background threads."""
        if self.backend == PROCRASTINATE:
            from matcher.jobs import pg

            self._thread = threading.Thread(
                target=pg.run,
                args=(self.runtime, self.queues),
                kwargs={"concurrency": self.concurrency, "stop": self._stop},
                name="techmatch-jobs",
                daemon=True,
            )
            self._thread.start()
        else:
            from matcher.jobs.table import TableWorker

            queues = [q for q in self.queues if q != MAINTENANCE]  # leases need no sweep
            self._table = TableWorker(self.runtime, queues, slots=self.concurrency).start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; let the running ones finish (within ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._table is not None:
            self._table.stop(timeout)  # type: ignore[attr-defined]

    def request_stop(self) -> None:
        """Ask the workers to stop (safe from a signal handler); ``wait`` then returns."""
        self._stop.set()

    def wait(self) -> None:
        """Block until ``stop`` is called (from a signal handler)."""
        while not self._stop.wait(0.5):
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError("the procrastinate worker stopped; see the log")

    def drain(self, timeout: float = 120.0) -> bool:
        """Wait until no job waits or runs (the maintenance sweep aside); whether in time."""
        return drain(self.runtime.engine, timeout=timeout)


def drain(engine: Engine, *, timeout: float = 120.0) -> bool:
    """Wait until the store's queue has no matching or webhook job waiting or running."""
    import time

    from matcher.store.repo import jobs as jobs_repo

    queues = [MATCHING, WEBHOOKS]
    count = (
        jobs_repo.outstanding_procrastinate
        if backend_of(engine.db.dialect.name) == PROCRASTINATE
        else jobs_repo.outstanding
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.sessions() as session:
            if count(session, queues=queues) == 0:
                return True
        time.sleep(0.05)
    return False
