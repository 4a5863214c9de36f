"""Matching in the background: a new need (or technology) is matched, routed and announced."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import date

from api.config import ApiSettings
from api.webhooks import deliver
from matcher.engine import Engine
from matcher.route import RoutingRules, route_matches
from matcher.store.db import transaction
from matcher.store.models import NeedRow

log = logging.getLogger(__name__)


def rules_from(settings: ApiSettings) -> RoutingRules:
    """Routing rules from the service settings."""
    return RoutingRules(
        cross_border_min_level=settings.cross_border_min_level,
        large_budget_cny=settings.large_budget_cny,
        large_budget_min_level=settings.large_budget_min_level,
        matches_per_need=settings.route_matches_per_need,
    )


def match_and_route(engine: Engine, settings: ApiSettings, need_id: int) -> list[int]:
    """Rank technologies for the need, route the top ones to brokers, fire webhooks."""
    matches = engine.match_need(need_id, top=max(10, settings.route_matches_per_need))
    with transaction(engine.sessions) as session:
        need = session.get(NeedRow, need_id)
        if need is None:
            return []
        routed = route_matches(
            session,
            need,
            matches,
            today=date.today(),
            tax=engine.taxonomy,
            rules=rules_from(settings),
        )
        routed_ids = [r.id for r in routed]
    for routed_id in routed_ids:
        deliver(
            engine.sessions,
            routed_id,
            timeout=settings.webhook_timeout_s,
            retries=settings.webhook_retries,
            backoff=settings.webhook_backoff_s,
        )
    return routed_ids


def match_technology(engine: Engine, settings: ApiSettings, technology_id: int) -> None:
    """A new technology may be the answer to stored needs: re-route those it ranks high for."""
    for match in engine.match_technology(technology_id, top=5):
        if match.need_id is not None and match.score >= 0.5:
            match_and_route(engine, settings, match.need_id)


class Worker:
    """One background thread that works through matching jobs in order."""

    def __init__(self, engine: Engine, settings: ApiSettings) -> None:
        self.engine, self.settings = engine, settings
        self._jobs: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="techmatch-worker", daemon=True)
        self._thread.start()

    def submit(self, kind: str, record_id: int) -> None:
        """Queue a need or technology for matching."""
        self._jobs.put((kind, record_id))

    def _dispatch(self, kind: str, record_id: int) -> None:
        if kind == "need":
            match_and_route(self.engine, self.settings, record_id)
        else:
            match_technology(self.engine, self.settings, record_id)

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

    def submit(self, kind: str, record_id: int) -> None:
        self._dispatch(kind, record_id)

    def join(self) -> None:
        return None

    def stop(self) -> None:
        return None
