"""What each background job does. Every handler is idempotent (jobs run at least once):
routing keeps the pairs already routed (``uq_routed_pair``), a delivery is made once per routed
match and broker (``uq_delivery_routed``) and is not POSTed again once delivered."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from matcher.errors import NotFoundError
from matcher.jobs import delivery as webhooks
from matcher.jobs import mail
from matcher.jobs.kinds import RetryLater, Run
from matcher.jobs.queue import enqueue
from matcher.jobs.settings import JobSettings
from matcher.store.db import transaction
from matcher.store.models import NotificationRow, WebhookDeliveryRow
from matcher.store.repo import jobs as jobs_repo

if TYPE_CHECKING:
    from matcher.engine import Engine

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What handlers work with in a worker process: the engine and the job settings."""

    engine: Engine
    settings: JobSettings
    http: httpx.Client | None = None


Handler = Callable[[Runtime, dict[str, Any], Run], None]


def enqueue_deliveries(rt: Runtime, need_id: int) -> int:
    """A delivery (and its job) for each routed match of the need not delivered to its broker
    yet, in one transaction; how many. Safe to repeat: a re-run after a crash finds what the
    first run routed but did not announce."""
    made = 0
    with transaction(rt.engine.sessions) as session:
        for routed_id, broker_id, url in jobs_repo.undelivered(session, need_id):
            row, new = jobs_repo.open_delivery(
                session, routed_id=routed_id, broker_id=broker_id, url=url
            )
            if new:
                enqueue(session, "deliver_webhook", {"delivery": row.id}, key=row.delivery_id)
                made += 1
    return made


def match_need(rt: Runtime, args: dict[str, Any], run: Run) -> None:
    """Match and route a need, then queue a webhook delivery for each broker it reached."""
    try:
        rt.engine.match_and_route(int(args["need_id"]))
    except NotFoundError:
        log.info("need %s is gone: nothing to match", args["need_id"])
        return
    enqueue_deliveries(rt, int(args["need_id"]))


def match_technology(rt: Runtime, args: dict[str, Any], run: Run) -> None:
    """A new or changed technology may enter stored needs' rankings: re-match the needs it
    ranks best for (``rematch_needs`` at most, scoring at least the routing floor), each as a
    job of its own."""
    try:
        matches = rt.engine.match_technology(
            int(args["technology_id"]), top=rt.settings.rematch_needs
        )
    except NotFoundError:
        return
    floor = rt.engine.routing_rules.min_score
    needs = [m.need_id for m in matches if m.need_id is not None and m.score >= floor]
    with transaction(rt.engine.sessions) as session:
        for need_id in needs:
            enqueue(session, "match_need", {"need_id": need_id}, key=f"need:{need_id}")


def route_unrouted(rt: Runtime, args: dict[str, Any], run: Run) -> None:
    """Route again what waits for a broker (capacity freed, a broker certified or back)."""
    for outcome in rt.engine.route_unrouted():
        if outcome.routed_ids:
            enqueue_deliveries(rt, outcome.need_id)


def deliver_webhook(rt: Runtime, args: dict[str, Any], run: Run) -> None:
    """One POST of a delivery (short timeout); a failure is retried by the queue's back-off on
    the webhooks queue, so a receiver that never answers holds up no routing."""
    with rt.engine.sessions() as session:
        row = session.get(WebhookDeliveryRow, int(args["delivery"]))
        if row is None or row.status in (webhooks.DELIVERED, webhooks.FAILED):
            return  # delivered by an earlier run (at-least-once), or given up on
        http = rt.http or httpx.Client(timeout=rt.settings.webhook_timeout_s)
        try:
            outcome = webhooks.attempt(session, row, http=http, development=rt.settings.development)
        finally:
            if rt.http is None:
                http.close()
        if outcome is None and run.last:
            row.status = webhooks.FAILED
        session.commit()
        if outcome is None and not run.last:
            raise RetryLater(f"delivery {row.delivery_id}: {row.last_error}")


def send_email(rt: Runtime, args: dict[str, Any], run: Run) -> None:
    """Send one outbox message; a failure is retried with back-off, then marked failed. A sent
    message is not sent again (at-least-once runs of this job)."""
    with rt.engine.sessions() as session:
        row = session.get(NotificationRow, int(args["notification"]))
        if row is None or row.status in (mail.SENT, mail.FAILED):
            return
        row.attempts += 1
        try:
            if not rt.settings.smtp_host:
                raise OSError("no SMTP host is set (MATCHER_SMTP_HOST)")
            mail.send(row, rt.settings)
        except (OSError, smtplib.SMTPException) as exc:
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if run.last:
                row.status = mail.FAILED
            session.commit()
            if not run.last:
                raise RetryLater(f"e-mail {row.key}: {row.last_error}") from exc
            return
        row.status, row.last_error = mail.SENT, None
        session.commit()


HANDLERS: dict[str, Handler] = {
    "match_need": match_need,
    "match_technology": match_technology,
    "route_unrouted": route_unrouted,
    "deliver_webhook": deliver_webhook,
    "send_email": send_email,
}
