"""The embedded queue: workers over the store's ``jobs`` table (SQLite has no job server).

A worker claims a due job with a lease (one ``UPDATE … RETURNING``), renews the lease while the
job runs (heartbeat), deletes it when done, and on failure sets it waiting again with
exponential back-off (``run_after``) or failed after its last try. A job whose worker died
(kill -9, power cut) keeps its expired lease and is claimed again: stalled-job recovery, and
what was pending when every worker stopped is simply there when one starts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Sequence

from matcher.jobs.handlers import HANDLERS, Runtime
from matcher.jobs.kinds import KINDS, Run
from matcher.jobs.queue import wake
from matcher.store.repo import jobs as jobs_repo

log = logging.getLogger(__name__)


class TableWorker:
    """Threads that work through the jobs of some queues: ``slots`` per queue, so a slow queue
    (webhooks) never takes the slots of another (matching)."""

    def __init__(self, rt: Runtime, queues: Sequence[str], *, slots: int = 1) -> None:
        self.rt, self.queues = rt, list(queues)
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=([q],), name=f"jobs-{q}", daemon=True)
            for q in self.queues
            for _ in range(max(1, slots))
        ]
        self._threads.append(threading.Thread(target=self._heartbeat, daemon=True))

    def start(self) -> TableWorker:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; wait for the jobs running now."""
        self._stop.set()
        wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def run_forever(self) -> None:
        """Start and block until ``stop`` (from a signal handler, say)."""
        self.start()
        while not self._stop.wait(1.0):
            pass
        self.stop()

    def _loop(self, queues: list[str]) -> None:
        settings = self.rt.settings
        while not self._stop.is_set():
            try:
                ran = self.run_one(queues)
            except Exception:  # the store is away for a moment: try again later
                log.exception("claiming a job failed")
                ran = False
            if not ran:
                wake.wait(settings.poll_s)
                wake.clear()

    def run_one(self, queues: Sequence[str]) -> bool:
        """Claim one due job of these queues and run it; whether there was one."""
        settings = self.rt.settings
        with self.rt.engine.sessions() as session:
            job = jobs_repo.claim(
                session,
                queues=queues,
                worker=self.name,
                now=time.time(),
                lease_s=settings.lease_s,
            )
        if job is None:
            return False
        spec = KINDS.get(job.kind)
        with self._lock:
            self._running.add(job.id)
        try:
            if spec is None:
                raise LookupError(f"unknown job kind {job.kind!r}")
            HANDLERS[spec.name](self.rt, job.args, Run(job.attempts, job.max_attempts))
        except Exception as exc:
            retry_at = None
            if spec is not None and job.attempts < job.max_attempts:
                wait = settings.backoff(spec.backoff_s(settings), job.attempts)
                retry_at = time.time() + wait
            log.warning("job %s (%s) failed, try %s: %s", job.id, job.kind, job.attempts, exc)
            error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            with self.rt.engine.sessions() as session:
                jobs_repo.fail(
                    session, job_id=job.id, worker=self.name, error=error, retry_at=retry_at
                )
        else:
            with self.rt.engine.sessions() as session:
                jobs_repo.finish(session, job_id=job.id, worker=self.name)
        finally:
            with self._lock:
                self._running.discard(job.id)
        return True

    def _heartbeat(self) -> None:
        every = max(0.2, self.rt.settings.lease_s / 3)
        while not self._stop.wait(every):
            with self._lock:
                running = list(self._running)
            if not running:
                continue
            try:
                with self.rt.engine.sessions() as session:
                    jobs_repo.extend_leases(
                        session,
                        job_ids=running,
                        worker=self.name,
                        until=time.time() + self.rt.settings.lease_s,
                    )
            except Exception:
                log.exception("renewing the leases of jobs %s failed", running)
