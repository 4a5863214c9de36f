"""SQL of background work: the embedded store's jobs table (claimed with a lease) and the
webhook deliveries the jobs make (one per routed match and broker)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matcher.store.models import BrokerRow, JobRow, RoutedMatchRow, WebhookDeliveryRow

TODO, DOING, FAILED = "todo", "doing", "failed"


def add_job(
    session: Session,
    *,
    queue: str,
    kind: str,
    args: dict[str, Any],
    key: str | None,
    max_attempts: int,
    run_after: float,
) -> None:
    """Insert a waiting job in the session's transaction; nothing when a job with the same key
    is already waiting (it will do the same work)."""
    values = dict(
        queue=queue,
        kind=kind,
        args=args,
        key=key,
        state=TODO,
        attempts=0,
        max_attempts=max_attempts,
        run_after=run_after,
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(JobRow).values(**values).on_conflict_do_nothing())


def _ready(queues: Sequence[str], now: float) -> Any:
    waiting = and_(JobRow.state == TODO, JobRow.run_after <= now)
    stalled = and_(JobRow.state == DOING, JobRow.lease_until < now)  # its worker died
    return and_(JobRow.queue.in_(queues), or_(waiting, stalled))


def claim(
    session: Session, *, queues: Sequence[str], worker: str, now: float, lease_s: float
) -> JobRow | None:
    """Take the next job that is due (or whose worker's lease ran out) for ``worker``, with a
    lease of ``lease_s`` seconds; None when there is none. Commits."""
    first = (
        select(JobRow.id)
        .where(_ready(queues, now))
        .order_by(JobRow.run_after, JobRow.id)
        .limit(1)
        .scalar_subquery()
    )
    # the condition again: another worker may have taken it between the SELECT and the UPDATE
    statement = (
        update(JobRow)
        .where(JobRow.id == first, _ready(queues, now))
        .values(state=DOING, worker=worker, lease_until=now + lease_s, attempts=JobRow.attempts + 1)
        .returning(JobRow)
    )
    job = session.scalars(statement).one_or_none()
    session.commit()
    return job


def extend_leases(session: Session, *, job_ids: Sequence[int], worker: str, until: float) -> None:
    """The heartbeat of a worker: its running jobs stay its own until ``until``."""
    if job_ids:
        session.execute(
            update(JobRow)
            .where(JobRow.id.in_(job_ids), JobRow.worker == worker, JobRow.state == DOING)
            .values(lease_until=until)
        )
    session.commit()


def finish(session: Session, *, job_id: int, worker: str) -> None:
    """A job done: gone from the table."""
    session.execute(delete(JobRow).where(JobRow.id == job_id, JobRow.worker == worker))
    session.commit()


def fail(session: Session, *, job_id: int, worker: str, error: str, retry_at: float | None) -> None:
    """A failed run: waiting again until ``retry_at`` (back-off), or failed for good (None).
    A job of the same key waiting meanwhile does the same work: this one is then dropped."""
    mine = and_(JobRow.id == job_id, JobRow.worker == worker)
    if retry_at is None:
        values: dict[str, Any] = dict(state=FAILED, lease_until=None, last_error=error)
    else:
        values = dict(state=TODO, run_after=retry_at, lease_until=None, last_error=error)
    try:
        with session.begin_nested():
            session.execute(update(JobRow).where(mine).values(**values))
    except IntegrityError:
        session.execute(delete(JobRow).where(mine))
    session.commit()


def outstanding(session: Session, *, queues: Sequence[str]) -> int:
    """Jobs of these queues waiting or running."""
    query = select(func.count()).where(JobRow.queue.in_(queues), JobRow.state.in_((TODO, DOING)))
    return session.scalar(query) or 0


def outstanding_procrastinate(session: Session, *, queues: Sequence[str]) -> int:
    """procrastinate's jobs of these queues waiting or running (PostgreSQL)."""
    query = text(
        "SELECT count(*) FROM procrastinate_jobs "
        "WHERE status IN ('todo', 'doing') AND queue_name = ANY(:queues)"
    )
    return session.scalar(query, {"queues": list(queues)}) or 0


def jobs(session: Session) -> list[JobRow]:
    """Every job in the table (tests, inspection)."""
    return list(session.scalars(select(JobRow).order_by(JobRow.id)))


# -- webhook deliveries --------------------------------------------------------------------
def undelivered(session: Session, need_id: int) -> list[tuple[int, int, str]]:
    """(routed id, broker id, url) of the need's routed matches whose broker has a webhook and
    no delivery of them yet."""
    query = (
        select(RoutedMatchRow.id, BrokerRow.id, BrokerRow.webhook_url)
        .join(BrokerRow, BrokerRow.id == RoutedMatchRow.broker_id)
        .outerjoin(
            WebhookDeliveryRow,
            and_(
                WebhookDeliveryRow.routed_id == RoutedMatchRow.id,
                WebhookDeliveryRow.broker_id == BrokerRow.id,
            ),
        )
        .where(
            RoutedMatchRow.need_id == need_id,
            BrokerRow.webhook_url.is_not(None),
            WebhookDeliveryRow.id.is_(None),
        )
        .order_by(RoutedMatchRow.id)
    )
    return [(r, b, u or "") for r, b, u in session.execute(query)]


def open_delivery(
    session: Session, *, routed_id: int, broker_id: int, url: str
) -> tuple[WebhookDeliveryRow, bool]:
    """The delivery of a routed match to a broker, made now if there is none (flushed in a
    savepoint: a concurrent maker wins, its row is returned); (row, whether it is new)."""
    found = delivery_of(session, routed_id=routed_id, broker_id=broker_id)
    if found is not None:
        return found, False
    row = WebhookDeliveryRow(broker_id=broker_id, routed_id=routed_id, url=url)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = delivery_of(session, routed_id=routed_id, broker_id=broker_id)
        assert found is not None
        return found, False
    return row, True


def delivery_of(session: Session, *, routed_id: int, broker_id: int) -> WebhookDeliveryRow | None:
    """The delivery of a routed match to a broker, if any."""
    query = select(WebhookDeliveryRow).where(
        WebhookDeliveryRow.routed_id == routed_id, WebhookDeliveryRow.broker_id == broker_id
    )
    return session.scalars(query).one_or_none()
