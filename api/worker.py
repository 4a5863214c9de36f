"""Background work of the service: the engine's durable job queue (``matcher.jobs``).

A write queues its matching inside its own transaction (``in_transaction``), so an
acknowledged need is matched even if the process dies right after; the service runs workers in
process unless ``MATCHER_API_IN_PROCESS_WORKER=false`` (then ``matcher worker`` processes do).
``InlineWorker`` (``MATCHER_API_BACKGROUND_MATCHING=false``, tests) queues nothing and runs the
work in the request thread after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from api.config import ApiSettings
from api.webhooks import deliver
from matcher import jobs
from matcher.domain import Side
from matcher.engine import Engine
from matcher.store.db import transaction

log = logging.getLogger(__name__)

JOBS = ("need", "technology", "unrouted")
BeforeCommit = Callable[[Any, list[Any]], None]
KIND = {"need": "match_need", "technology": "match_technology", "unrouted": "route_unrouted"}
ARG = {"need": "need_id", "technology": "technology_id"}


def job_settings(settings: ApiSettings) -> jobs.JobSettings:
    """The job settings of the environment, with the service's webhook settings."""
    return jobs.JobSettings(
        webhook_timeout_s=settings.webhook_timeout_s,
        webhook_attempts=settings.webhook_retries,
        webhook_backoff_s=settings.webhook_backoff_s,
        environment=settings.environment,
    )


def announce(engine: Engine, settings: ApiSettings, routed_ids: list[int]) -> None:
    """POST each routed match to its broker's webhook now, retrying in-line (inline mode)."""
    for routed_id in routed_ids:
        deliver(
            engine.sessions,
            routed_id,
            timeout=settings.webhook_timeout_s,
            retries=settings.webhook_retries,
            backoff=settings.webhook_backoff_s,
            development=settings.development,
        )


def match_and_route(engine: Engine, settings: ApiSettings, need_id: int) -> list[int]:
    """Rank technologies for the need, route the best ones to brokers, fire webhooks now."""
    routed = engine.match_and_route(need_id).routed_ids
    announce(engine, settings, routed)
    return routed


def route_unrouted(engine: Engine, settings: ApiSettings) -> list[int]:
    """Route again what waits for a broker (after capacity was freed or a broker certified)."""
    routed = [i for outcome in engine.route_unrouted() for i in outcome.routed_ids]
    announce(engine, settings, routed)
    return routed


def match_technology(engine: Engine, settings: ApiSettings, technology_id: int) -> None:
    """A new technology may be the answer to stored needs: re-route those it ranks high for."""
    floor = engine.routing_rules.min_score
    top = jobs.settings().rematch_needs
    for match in engine.match_technology(technology_id, top=top):
        if match.need_id is not None and match.score >= floor:
            match_and_route(engine, settings, match.need_id)


def _check(kind: str) -> None:
    if kind not in JOBS:
        raise ValueError(f"unknown job {kind!r}; jobs are {', '.join(JOBS)}")


class Worker:
    """Queues matching on the durable queue; runs this process's workers unless told not to."""

    def __init__(self, engine: Engine, settings: ApiSettings) -> None:
        self.engine, self.settings = engine, settings
        jobs.configure(job_settings(settings))
        self.workers: jobs.Workers | None = None
        if settings.in_process_worker:
            self.workers = jobs.Workers(engine, concurrency=settings.worker_concurrency).start()

    def in_transaction(
        self,
        side: Side,
        before_commit: BeforeCommit | None = None,
        *,
        unchanged: Mapping[str, Any] | None = None,
    ) -> BeforeCommit:
        """A ``before_commit`` hook that runs ``before_commit``, then queues the matching of
        each written row in the same transaction; not of those whose text is as in
        ``unchanged`` (stored rows by reference, before an import)."""
        kind = side.singular

        def hook(session: Any, rows: list[Any]) -> None:
            if before_commit is not None:
                before_commit(session, rows)
            for row in rows:
                old = (unchanged or {}).get(row.ref)
                if old is None or old.content_hash != row.content_hash:
                    jobs.enqueue(session, KIND[kind], {ARG[kind]: row.id}, key=str(row.id))

        return hook

    def after_commit(self, kind: str, record_id: int) -> None:
        """A write committed: its jobs are queued already (``in_transaction``)."""
        _check(kind)

    def submit(self, kind: str, record_id: int = 0) -> None:
        """Queue a job in a transaction of its own: ``need``, ``technology`` or ``unrouted``."""
        _check(kind)
        args = {ARG[kind]: record_id} if kind in ARG else {}
        key = str(record_id) if kind in ARG else "all"
        with transaction(self.engine.sessions) as session:
            jobs.enqueue(session, KIND[kind], args, key=key)

    def join(self, timeout: float = 120.0) -> None:
        """Wait until every queued matching and delivery job is done (tests, benchmarks)."""
        if not jobs.drain(self.engine, timeout=timeout):
            log.warning("background jobs still outstanding after %s s", timeout)

    def stop(self) -> None:
        """Stop this process's workers (running jobs finish; queued ones stay queued)."""
        if self.workers is not None:
            self.workers.stop()


class InlineWorker(Worker):
    """Runs the work in the request thread after the commit, queueing nothing (tests, or
    MATCHER_API_BACKGROUND_MATCHING=false)."""

    def __init__(self, engine: Engine, settings: ApiSettings) -> None:
        self.engine, self.settings = engine, settings
        self.workers = None

    def in_transaction(
        self,
        side: Side,
        before_commit: BeforeCommit | None = None,
        *,
        unchanged: Mapping[str, Any] | None = None,
    ) -> BeforeCommit:
        return before_commit or (lambda session, rows: None)

    def after_commit(self, kind: str, record_id: int) -> None:
        self.submit(kind, record_id)

    def submit(self, kind: str, record_id: int = 0) -> None:
        _check(kind)
        if kind == "need":
            match_and_route(self.engine, self.settings, record_id)
        elif kind == "technology":
            match_technology(self.engine, self.settings, record_id)
        else:
            route_unrouted(self.engine, self.settings)

    def join(self, timeout: float = 120.0) -> None:
        return None
