"""Who a record belongs to (for the permission rules) and the audit trail of its changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.permissions import RecordFacts
from matcher.store.models import DealRow, NeedRow, RecordEventRow, RoutedMatchRow, TechnologyRow
from matcher.store.repo.routing import OPEN_STAGES


def record_facts(session: Session, side: Side, row: TechnologyRow | NeedRow) -> RecordFacts:
    """Creator, brokers it was routed to and brokers with an open deal on it."""
    routed_of = (
        RoutedMatchRow.technology_id if side is Side.technologies else RoutedMatchRow.need_id
    )
    deal_of = DealRow.technology_id if side is Side.technologies else DealRow.need_id
    routed = set(
        session.scalars(
            select(RoutedMatchRow.broker_id).where(
                routed_of == row.id, RoutedMatchRow.state != "returned"
            )
        )
    )
    dealing = set(
        session.scalars(
            select(DealRow.broker_id).where(deal_of == row.id, DealRow.stage.in_(OPEN_STAGES))
        )
    )
    return RecordFacts(
        created_by=row.created_by,
        routed_to=frozenset(routed),
        open_deal_brokers=frozenset(dealing),
        confidential=bool(row.confidential),
    )


def add_record_event(
    session: Session,
    *,
    side: Side,
    row: TechnologyRow | NeedRow,
    actor: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> RecordEventRow:
    """Audit one change of a record: which fields, their values before and after."""
    old, new = before or {}, after or {}
    fields = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    event = RecordEventRow(
        side=side.value,
        record_id=row.id,
        ref=row.ref,
        actor=actor,
        action=action,
        fields=fields,
        before={k: old.get(k) for k in fields} if before is not None else None,
        after={k: new.get(k) for k in fields} if after is not None else None,
    )
    session.add(event)
    return event


def record_events(
    session: Session, *, side: Side | None, ref: str | None, limit: int, offset: int
) -> list[RecordEventRow]:
    """The audit trail, newest first, optionally of one side and one record."""
    query = select(RecordEventRow)
    if side is not None:
        query = query.where(RecordEventRow.side == side.value)
    if ref is not None:
        query = query.where(RecordEventRow.ref == ref)
    query = query.order_by(RecordEventRow.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def fields_of(side: Side, row: TechnologyRow | NeedRow) -> dict[str, Any]:
    """A stored row as its import fields (``id`` is the reference), JSON-ready."""
    out = {name: getattr(row, name) for name in side.record_model.model_fields if name != "id"}
    out["id"] = row.ref
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in out.items()}


def audit_hook(
    side: Side,
    *,
    actor: str,
    action: str,
    before: dict[str, Any] | None = None,
    creator: int | None = None,
) -> Callable[[Session, list[Any]], None]:
    """A ``before_commit`` hook that audits each written row (and sets its creator on
    ``create``), so the entry commits with the change or not at all."""

    def hook(session: Session, rows: list[Any]) -> None:
        for row in rows:
            if action == "create":
                row.created_by = creator
            after = {"status": row.status} if action == "archive" else fields_of(side, row)
            add_record_event(
                session, side=side, row=row, actor=actor, action=action, before=before, after=after
            )

    return hook


def import_audit(
    session: Session, side: Side, stored: Mapping[str, Any], *, actor: str
) -> Callable[[Session, list[Any]], None]:
    """A ``before_commit`` hook that audits an import: a new row as created, a stored one whose
    fields changed as updated, with its fields before (read now) and after.

    Args:
        stored: what the import will overwrite, by reference (anything with the row's ``id``).
    """
    model = TechnologyRow if side is Side.technologies else NeedRow
    ids = [entry.id for entry in stored.values()]
    before: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        rows: Iterable[TechnologyRow | NeedRow] = session.scalars(
            select(model).where(model.id.in_(ids[start : start + 900]))
        )
        before.update({row.ref: fields_of(side, row) for row in rows})

    def hook(session: Session, rows: list[Any]) -> None:
        for row in rows:
            old, new = before.get(row.ref), fields_of(side, row)
            if old != new:
                action = "create" if old is None else "update"
                add_record_event(
                    session, side=side, row=row, actor=actor, action=action, before=old, after=new
                )

    return hook


def revealed_ids(session: Session, side: Side, *, broker_id: int, ids: list[int]) -> set[int]:
    """Which of these records a broker sees in full: created by them, or in one of their deals
    (before that, a teaser without the parties' names and contact)."""
    if not ids:
        return set()
    model = TechnologyRow if side is Side.technologies else NeedRow
    deal_of = DealRow.technology_id if side is Side.technologies else DealRow.need_id
    created = session.scalars(
        select(model.id).where(model.id.in_(ids), model.created_by == broker_id)
    )
    dealt = session.scalars(select(deal_of).where(deal_of.in_(ids), DealRow.broker_id == broker_id))
    return set(created) | set(dealt)
