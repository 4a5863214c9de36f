"""Putting work on the queue: ``enqueue`` inside the caller's transaction, whichever queue
serves the store (procrastinate on PostgreSQL, the jobs table otherwise)."""

from __future__ import annotations

import threading
import time
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from matcher.jobs.kinds import KINDS, Kind
from matcher.jobs.settings import JobSettings
from matcher.store.repo import jobs as jobs_repo

PROCRASTINATE, TABLE = "procrastinate", "table"
_settings: JobSettings | None = None
_deferrer: procrastinate.App | None = None
# set when a transaction that enqueued commits: wakes this process's table workers at once
wake = threading.Event()


def settings() -> JobSettings:
    """The process's job settings (from the environment unless ``configure``d)."""
    global _settings
    if _settings is None:
        _settings = JobSettings()
    return _settings


def configure(job_settings: JobSettings) -> None:
    """Use these settings in this process (workers, the service, tests)."""
    global _settings
    _settings = job_settings


def backend_of(session_or_dialect: Session | str) -> str:
    """Which queue serves a store: procrastinate on PostgreSQL, the jobs table on SQLite (or
    wherever ``MATCHER_JOBS_BACKEND=table``)."""
    if isinstance(session_or_dialect, Session):
        dialect = session_or_dialect.get_bind().dialect.name
    else:
        dialect = session_or_dialect
    if dialect == "postgresql" and settings().backend != TABLE:
        return PROCRASTINATE
    return TABLE


def enqueue(session: Session, kind: str, args: dict[str, Any], key: str | None = None) -> None:
    """Queue a job in the session's transaction: it exists if and only if that commits.

    ``key``: while a job with this key waits, another is not added (a second write to the
    same need before its matching started needs one matching, not two).
    """
    spec = KINDS[kind]
    if backend_of(session) == PROCRASTINATE:
        _defer(session, spec, args, key)
    else:
        jobs_repo.add_job(
            session,
            queue=spec.queue,
            kind=kind,
            args=args,
            key=f"{kind}:{key}" if key else None,
            max_attempts=spec.attempts(settings()),
            run_after=time.time(),
        )
    if not event.contains(session, "after_commit", _wake):
        event.listen(session, "after_commit", _wake)


def _wake(session: Session) -> None:
    wake.set()


def conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _defer(session: Session, spec: Kind, args: dict[str, Any], key: str | None) -> None:
    """Defer a job in the session's transaction (on its psycopg connection)."""
    global _deferrer
    if _deferrer is None:  # never opened: every defer brings its connection
        _deferrer = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())
    raw = session.connection().connection.driver_connection
    options: dict[str, Any] = {"queue": spec.queue, "connection": raw}
    if key:
        # one waiting job per key; the same key's jobs never run at the same time
        options["queueing_lock"] = options["lock"] = f"{spec.name}:{key}"
    try:
        with session.begin_nested():  # AlreadyEnqueued must not abort the caller's transaction
            _deferrer.configure_task(spec.name, **options).defer(**args)
    except AlreadyEnqueued:
        pass
