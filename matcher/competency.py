"""Broker competency as the national training scheme keeps it: certificate history and training
records, with the track record (``matcher.track_record``) in one view.

The rules are plain functions over plain values (``check_training``, ``certificate_changes``,
``certificate_state``, ``check_upgrade``); the rest applies them to the store
(``matcher.store.repo.competency``) in the caller's transaction. The track record is
``matcher.track_record``'s, reassignment ``matcher.reassign``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from matcher.domain import BrokerLevel
from matcher.errors import (
    ConflictError,
    FieldError,
    InvalidInputError,
    RecordInvalidError,
)
from matcher.store.models import BrokerRow
from matcher.store.repo import competency as store
from matcher.track_record import track_record

LEVELS = tuple(level.value for level in BrokerLevel)  # beginner < intermediate < advanced
EVENTS = ("certified", "renewed", "upgraded", "suspended", "reinstated")
MIN_HOURS, MAX_HOURS = 0.5, 400.0
MAX_TEXT = 200
EXPIRY_WARNING_DAYS = 30  # the operators' console marks a certificate expiring this soon


# -- training records ------------------------------------------------------------------
@dataclass(frozen=True)
class Training:
    """A validated training record."""

    course: str
    level: str
    taken_on: date
    hours: float
    training_base: str


def _text(name: str, value: Any, errors: list[FieldError]) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        errors.append(
            FieldError("string_too_short", (name,), "must not be empty", {"min_length": 1})
        )
    elif len(text) > MAX_TEXT:
        errors.append(
            FieldError(
                "string_too_long",
                (name,),
                f"at most {MAX_TEXT} characters",
                {"max_length": MAX_TEXT},
            )
        )
    return text


def check_training(raw: Mapping[str, Any], *, today: date) -> Training:
    """A training record from what was sent (strings from a form, or typed values), or
    ``RecordInvalidError`` listing each field's problem."""
    errors: list[FieldError] = []
    course = _text("course", raw.get("course"), errors)
    base = _text("training_base", raw.get("training_base"), errors)
    level = str(raw.get("level") or "")
    if level not in LEVELS:
        errors.append(
            FieldError(
                "enum",
                ("level",),
                f"must be one of {', '.join(LEVELS)}",
                {"expected": ", ".join(LEVELS)},
            )
        )
    taken_on = raw.get("taken_on")
    if isinstance(taken_on, str):
        try:
            taken_on = date.fromisoformat(taken_on.strip())
        except ValueError:
            taken_on = None
    if isinstance(taken_on, datetime) or not isinstance(taken_on, date):
        errors.append(FieldError("date_parsing", ("taken_on",), "a date, YYYY-MM-DD"))
        taken_on = None
    elif taken_on > today:
        errors.append(
            FieldError(
                "date_future",
                ("taken_on",),
                f"{taken_on.isoformat()} is in the future; record a course once taken",
                {"today": today.isoformat()},
            )
        )
    hours: float | None
    try:
        hours = float(raw.get("hours"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        hours = None
    if hours is None or hours != hours:  # missing, not a number, NaN
        errors.append(FieldError("float_parsing", ("hours",), "a number of hours"))
    elif hours < MIN_HOURS:
        errors.append(
            FieldError("greater_than_equal", ("hours",), f"at least {MIN_HOURS}", {"ge": MIN_HOURS})
        )
    elif hours > MAX_HOURS:
        errors.append(
            FieldError("less_than_equal", ("hours",), f"at most {MAX_HOURS:g}", {"le": MAX_HOURS})
        )
    if errors:
        raise RecordInvalidError(errors, what="training record")
    assert isinstance(taken_on, date) and hours is not None
    return Training(course, level, taken_on, hours, base)


def add_training(
    session: Session, broker: BrokerRow, raw: Mapping[str, Any], *, today: date
) -> Any:
    """Validate and store a training record of the broker."""
    training = check_training(raw, today=today)
    return store.add_training(session, broker_id=broker.id, **asdict(training))


# -- the certificate -----------------------------------------------------------------------
@dataclass(frozen=True)
class Certificate:
    """A certificate's state as its history records it."""

    level: str
    valid_until: date
    suspended: bool
    certificate_no: str = ""


def level_rank(level: str) -> int:
    """Where a level stands (beginner 0 … advanced 2); an unknown one below all."""
    return LEVELS.index(level) if level in LEVELS else -1


def certificate_state(
    *, suspended: bool, valid_until: date, today: date, warn_days: int = EXPIRY_WARNING_DAYS
) -> str:
    """``suspended``, ``expired``, ``expiring`` (within ``warn_days``) or ``valid``."""
    if suspended:
        return "suspended"
    days_left = (valid_until - today).days
    if days_left < 0:
        return "expired"
    return "expiring" if days_left <= warn_days else "valid"


def in_good_standing(broker: Any, today: date) -> bool:
    """Not suspended, certificate valid today: may receive matches."""
    return not broker.suspended and broker.valid_until >= today


def certificate_changes(before: Certificate, after: Certificate) -> list[str]:
    """The history events a change of certificate makes, in order: a new validity or a lower
    level is a renewal, a higher level an upgrade; suspension and reinstatement come last."""
    events: list[str] = []
    if level_rank(after.level) > level_rank(before.level):
        events.append("upgraded")
    elif (after.level, after.valid_until, after.certificate_no) != (
        before.level,
        before.valid_until,
        before.certificate_no,
    ):
        events.append("renewed")
    if after.suspended != before.suspended:
        events.append("suspended" if after.suspended else "reinstated")
    return events


def certificate_of(broker: BrokerRow) -> Certificate:
    """A broker's certificate as it stands."""
    return Certificate(
        broker.level, broker.valid_until, bool(broker.suspended), broker.certificate_no
    )


def change_certificate(
    session: Session,
    broker: BrokerRow,
    *,
    suspended: bool | None = None,
    valid_until: date | None = None,
    level: str | None = None,
    actor: str = "admin",
    note: str | None = None,
) -> list[str]:
    """Suspend, reinstate, renew or re-level a broker and record each event in their history."""
    before = certificate_of(broker)
    if suspended is not None:
        broker.suspended = suspended
    if valid_until is not None:
        broker.valid_until = valid_until
    if level is not None:
        broker.level = level
    events = certificate_changes(before, certificate_of(broker))
    for event in events:
        store.add_certificate_event(session, broker, event=event, actor=actor, note=note)
    return events


def check_upgrade(current: Certificate, *, level: str, valid_until: date, today: date) -> None:
    """Refuse an upgrade that is none: to the same or a lower level, to a past validity, or of a
    suspended broker."""
    if level not in LEVELS:
        raise InvalidInputError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    if level_rank(level) <= level_rank(current.level):
        raise InvalidInputError(
            f"level: an upgrade goes above {current.level}; {level} is not (renew instead)"
        )
    if valid_until < today:
        raise InvalidInputError(
            f"valid_until: {valid_until.isoformat()} is in the past; the new certificate must "
            f"run to today ({today.isoformat()}) or later"
        )
    if current.suspended:
        raise ConflictError("the broker is suspended; reinstate them before an upgrade")


def upgrade(
    session: Session,
    broker: BrokerRow,
    *,
    level: str,
    certificate_no: str,
    valid_until: date,
    actor: str,
    today: date,
    note: str | None = None,
) -> None:
    """Record a level upgrade with the new certificate's number and validity."""
    check_upgrade(certificate_of(broker), level=level, valid_until=valid_until, today=today)
    number = certificate_no.strip()
    if not number or len(number) > 64:
        raise InvalidInputError("certificate_no: the new certificate's number, 1 to 64 characters")
    holder = store.certificate_taken(session, number, but=broker.id)
    if holder is not None:
        raise ConflictError(f"certificate number {number} belongs to broker {holder}")
    broker.level, broker.certificate_no, broker.valid_until = level, number, valid_until
    store.add_certificate_event(session, broker, event="upgraded", actor=actor, note=note)


def history_view(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Certificate events, JSON-ready."""
    return [
        {
            "event": r.event,
            "level": r.level,
            "certificate_no": r.certificate_no,
            "valid_until": r.valid_until.isoformat(),
            "actor": r.actor,
            "note": r.note,
            "at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def training_view(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Training records, JSON-ready, with their id."""
    return [
        {
            "id": r.id,
            "course": r.course,
            "level": r.level,
            "taken_on": r.taken_on.isoformat(),
            "hours": r.hours,
            "training_base": r.training_base,
        }
        for r in rows
    ]


def competency(session: Session, broker: BrokerRow) -> dict[str, Any]:
    """A broker's certificate history, training records and track record, JSON-ready."""
    return {
        "broker": broker.ref,
        "name": broker.name,
        "level": broker.level,
        "certificate_no": broker.certificate_no,
        "valid_until": broker.valid_until.isoformat(),
        "history": history_view(store.certificate_events(session, broker.id)),
        "trainings": training_view(store.trainings(session, broker.id)),
        "training_hours": sum(t.hours for t in store.trainings(session, broker.id)),
        "track_record": track_record(session, broker.id).as_dict(),
    }
