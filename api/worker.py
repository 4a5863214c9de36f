"""Matching in the background: a new need (or technology) is matched, routed and announced.

The work itself is the engine's (``Engine.match_and_route``, ``Engine.route_unrouted``); this
module only runs it off the request thread and delivers webhooks for what was routed.
"""

from __future__ import annotations

import logging
import queue
import threading

from api.config import ApiSettings
from api.webhooks import deliver
from matcher.engine import Engine

log = logging.getLogger(__name__)

JOBS = ("need", "technology", "unrouted")


def announce(engine: Engine, settings: ApiSettings, routed_ids: list[int]) -> None:
    """POST each routed match to its broker's webhook (if they set one)."""
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
    """Rank technologies for the need, route the best ones to brokers, fire webhooks."""
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
    for match in engine.match_technology(technology_id, top=5):
        if match.need_id is not None and match.score >= floor:
            match_and_route(engine, settings, match.need_id)


class Worker:
    """One background thread that works through matching jobs in order."""

    def __init__(self, engine: Engine, settings: ApiSettings) -> None:
        self.engine, self.settings = engine, settings
        self._jobs: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="techmatch-worker", daemon=True)
        self._thread.start()

    def submit(self, kind: str, record_id: int = 0) -> None:
        """Queue a job: ``need`` or ``technology`` (a new record), or ``unrouted``."""
        if kind not in JOBS:
            raise ValueError(f"unknown job {kind!r}; jobs are {', '.join(JOBS)}")
        self._jobs.put((kind, record_id))

    def _dispatch(self, kind: str, record_id: int) -> None:
        if kind == "need":
            match_and_route(self.engine, self.settings, record_id)
        elif kind == "technology":
            match_technology(self.engine, self.settings, record_id)
        else:
            route_unrouted(self.engine, self.settings)

    def join(self) -> None:
        """Wait until every queued job is done."""
        self._jobs.join()

    def stop(self) -> None:
        """Finish queued jobs and stop the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._dispatch(*job)
            except Exception:  # a failed job must not stop the worker
                log.exception("matching job %s failed", job)
            finally:
                self._jobs.task_done()


class InlineWorker(Worker):
    """Runs jobs in the request thread (tests, or MATCHER_API_BACKGROUND_MATCHING=false)."""

    def __init__(self, engine: Engine, settings: ApiSettings) -> None:
        self.engine, self.settings = engine, settings

    def submit(self, kind: str, record_id: int = 0) -> None:
        if kind not in JOBS:
            raise ValueError(f"unknown job {kind!r}; jobs are {', '.join(JOBS)}")
        self._dispatch(kind, record_id)

    def join(self) -> None:
        return None

    def stop(self) -> None:
        return None
