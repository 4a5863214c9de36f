"""Who may do what: one table of rules over plain facts, the same for the API and the CLI.

Roles are an administrator, a broker whose certificate is valid today, a broker whose
certificate has lapsed (expired; a suspended broker's token is refused before any rule), and
the anonymous submitter, who only has the tracking link of their own submission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from matcher.errors import PermissionDeniedError


class Role(StrEnum):
    """Who is acting."""

    admin = "admin"
    broker = "broker"  # certificate valid today
    lapsed_broker = "lapsed_broker"  # certificate expired
    submitter = "submitter"  # anonymous, holding a tracking link


class Action(StrEnum):
    """What they want to do."""

    read_record = "read_record"
    create_record = "create_record"
    update_record = "update_record"
    archive_record = "archive_record"
    search = "search"
    read_inbox = "read_inbox"
    feedback = "feedback"
    claim = "claim"
    read_deal = "read_deal"
    work_deal = "work_deal"  # move its stage, add a note
    set_webhook = "set_webhook"
    track = "track"  # read a submission's status through its tracking link


@dataclass(frozen=True)
class Actor:
    """Who acts: a role and, for brokers, their id."""

    role: Role
    broker_id: int | None = None

    @classmethod
    def of(cls, *, admin: bool, broker: Any = None, today: date | None = None) -> Actor:
        """The actor of an admin token or a broker's row (lapsed when the certificate expired)."""
        if admin:
            return cls(Role.admin)
        if broker is None:
            return cls(Role.submitter)
        expired = broker.valid_until < (today or date.today())
        return cls(Role.lapsed_broker if expired else Role.broker, broker.id)


@dataclass(frozen=True)
class RecordFacts:
    """What the rules need to know about a technology or need."""

    created_by: int | None = None  # the broker who created it through the API
    routed_to: frozenset[int] = frozenset()  # brokers it was routed to
    open_deal_brokers: frozenset[int] = frozenset()  # brokers with an open deal on it
    confidential: bool = False


@dataclass(frozen=True)
class Decision:
    """Allowed, or refused with a reason a person can act on."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Rule:
    """Which roles may do an action, and an extra check over the record and the change."""

    roles: frozenset[Role]
    needs_record: bool = False
    why_not: str = ""
    fields: frozenset[str] = field(default_factory=frozenset)  # fields only admins may change


ADMIN_ONLY_FIELDS = frozenset({"confidential"})
ALL = frozenset(Role)
STAFF = frozenset({Role.admin, Role.broker})
BROKERS = frozenset({Role.admin, Role.broker, Role.lapsed_broker})

# The table: action → who may. Record-level checks (ownership) follow in ``decide``.
RULES: dict[Action, Rule] = {
    Action.read_record: Rule(STAFF),
    Action.create_record: Rule(STAFF, fields=ADMIN_ONLY_FIELDS),
    Action.update_record: Rule(STAFF, needs_record=True, fields=ADMIN_ONLY_FIELDS),
    Action.archive_record: Rule(STAFF, needs_record=True),
    Action.search: Rule(STAFF),
    Action.read_inbox: Rule(STAFF),
    Action.feedback: Rule(STAFF),
    Action.claim: Rule(STAFF),
    Action.read_deal: Rule(BROKERS),
    Action.work_deal: Rule(STAFF),
    Action.set_webhook: Rule(STAFF),
    Action.track: Rule(ALL),
}

LAPSED = (
    "your certificate has expired: you keep read access to your own deals only; "
    "ask an administrator to renew it"
)


def decide(
    actor: Actor,
    action: Action,
    record: RecordFacts | None = None,
    *,
    changes: Iterable[str] = (),
) -> Decision:
    """Whether ``actor`` may do ``action`` (on ``record``, changing ``changes``), and why not.

    ``changes``: the fields an update sends, or those a new record sets away from their default.
    """
    rule = RULES[action]
    if actor.role not in rule.roles:
        if actor.role is Role.lapsed_broker:
            return Decision(False, LAPSED)
        if actor.role is Role.submitter:
            return Decision(False, "sign in: this needs an administrator's or a broker's token")
        return Decision(False, f"{actor.role.value} may not {action.value.replace('_', ' ')}")
    if actor.role is Role.admin:
        return Decision(True)
    admin_only = sorted(set(changes) & rule.fields)
    if admin_only:
        return Decision(False, f"{', '.join(admin_only)}: only an administrator may change it")
    if rule.needs_record:
        assert record is not None, f"{action} needs the record's facts"
        if not owns(actor, record):
            return Decision(
                False,
                "you may change only records you created, or records routed to you that are "
                "in your open deal",
            )
    return Decision(True)


def owns(actor: Actor, record: RecordFacts) -> bool:
    """A broker's own record: created by them, or routed to them and in their open deal."""
    if actor.broker_id is None:
        return False
    if record.created_by == actor.broker_id:
        return True
    return actor.broker_id in record.routed_to and actor.broker_id in record.open_deal_brokers


def require(
    actor: Actor,
    action: Action,
    record: RecordFacts | None = None,
    *,
    changes: Iterable[str] = (),
) -> None:
    """Raise ``PermissionDeniedError`` (403) with the reason when ``decide`` refuses."""
    decision = decide(actor, action, record, changes=changes)
    if not decision.allowed:
        raise PermissionDeniedError(decision.reason)
