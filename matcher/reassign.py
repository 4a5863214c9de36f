"""An operator's reassignment of an unclaimed inbox item to another broker.

``check_reassign`` is the rule over plain values; ``reassign`` applies it to the store and
records it in the need's audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.errors import ConflictError, NotFoundError
from matcher.store import repo
from matcher.store.models import BrokerRow, NeedRow, RoutedMatchRow
from matcher.store.repo import competency as store
from matcher.store.repo.ownership import add_record_event
from matcher.store.repo.routing import WAITING, broker_load

REASSIGNED = {
    "en": "reassigned by an operator from {old} to {new}",
    "zh": "运营人员将其从 {old} 改派给 {new}",
}


@dataclass(frozen=True)
class Standing:
    """What reassignment needs to know of the broker who would receive the item."""

    ref: str
    suspended: bool
    valid_until: date
    capacity: int
    load: int


def check_reassign(item_state: str, holder: str, to: Standing, *, today: date) -> None:
    """Refuse a reassignment: of an item already claimed or decided, to its own holder, to a
    broker suspended, expired or without capacity."""
    if item_state not in WAITING:
        raise ConflictError(
            f"the item is {item_state}; only an unclaimed item (new or seen) can be reassigned"
        )
    if to.ref == holder:
        raise ConflictError(f"the item is already with {to.ref}")
    if to.suspended:
        raise ConflictError(f"broker {to.ref} is suspended")
    if to.valid_until < today:
        raise ConflictError(
            f"broker {to.ref}'s certificate expired on {to.valid_until.isoformat()}"
        )
    if to.load >= to.capacity:
        raise ConflictError(f"broker {to.ref} has no free capacity ({to.load}/{to.capacity})")


@dataclass(frozen=True)
class Reassignment:
    """An inbox item moved by an operator: the item, whom it came from, whom it went to."""

    item: RoutedMatchRow
    previous: str
    broker: str
    need: str


def reassign(
    session: Session, routed_id: int, to_broker: str, *, actor: str, today: date
) -> Reassignment:
    """Move an unclaimed inbox item to another broker in good standing with capacity; the
    need's audit trail records it. The item arrives as new, with why it came."""
    item = store.waiting_item(session, routed_id)
    if item is None:
        raise NotFoundError(f"no inbox item {routed_id}")
    target = repo.get_by_ref_or_id(session, BrokerRow, to_broker)
    if target is None:
        raise NotFoundError(f"no broker {to_broker!r}")
    holder = session.get(BrokerRow, item.broker_id)
    old = holder.ref if holder is not None else str(item.broker_id)
    standing = Standing(
        target.ref,
        bool(target.suspended),
        target.valid_until,
        target.capacity,
        broker_load(session, target.id),
    )
    check_reassign(item.state, old, standing, today=today)
    note = {lang: text.format(old=old, new=target.ref) for lang, text in REASSIGNED.items()}
    before = {lang: (item.reasons or {}).get(lang, item.reason) for lang in note}
    item.reasons = {lang: f"{before[lang]}; {text}" for lang, text in note.items()}
    item.reason = item.reasons["en"]
    item.broker_id, item.state = target.id, "new"
    need = session.get(NeedRow, item.need_id)
    if need is not None:
        add_record_event(
            session,
            side=Side.needs,
            row=need,
            actor=actor,
            action="reassign",
            before={"broker": old, "inbox_item": item.id},
            after={"broker": target.ref, "inbox_item": item.id},
        )
    session.flush()
    return Reassignment(item, old, target.ref, need.ref if need is not None else "")
