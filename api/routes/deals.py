"""Routes for deals: claiming an inbox item, moving it through the pipeline, notes, the audit."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import BrokerDep, Caller, CallerDep, SessionDep
from api.routes.brokers import need_summary, own_routed, technology_summary
from matcher.deal import STAGES, add_note, allowed, change_stage
from matcher.store.models import (
    BrokerRow,
    DealEventRow,
    DealRow,
    NeedRow,
    RoutedMatchRow,
    TechnologyRow,
)

router = APIRouter(prefix="/api/v1", tags=["deals"])
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


def require_deal_reader(caller: CallerDep) -> Caller:
    """Admins, or brokers whose account is not suspended."""
    if caller.broker is not None and caller.broker.suspended:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your broker account is suspended")
    if caller.broker is None and not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint is for brokers and admins")
    return caller


DealCallerDep = Annotated[Caller, Depends(require_deal_reader)]


class StageIn(BaseModel):
    """Move a deal to the next stage, or close it as lost (a reason is then required)."""

    model_config = ConfigDict(extra="forbid")

    to: Literal["claimed", "contacted", "nda_signed", "negotiating", "agreed", "closed_lost"]
    note: Note | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class NoteIn(BaseModel):
    """A free-text note on a deal's audit trail."""

    model_config = ConfigDict(extra="forbid")

    note: Note


def event_view(event: DealEventRow) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.created_at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "from_stage": event.from_stage,
        "to_stage": event.to_stage,
        "note": event.note,
    }


def deal_view(session: Session, deal: DealRow, *, events: bool = False) -> dict[str, Any]:
    """A deal with what it pairs and (optionally) its full audit trail."""
    broker = session.get(BrokerRow, deal.broker_id)
    routed = session.get(RoutedMatchRow, deal.routed_id)
    out: dict[str, Any] = {
        "id": deal.id,
        "stage": deal.stage,
        "allowed_next": allowed(deal.stage),
        "lost_reason": deal.lost_reason,
        "broker": broker.ref if broker else None,
        "routed_id": deal.routed_id,
        "score": round(routed.score, 4) if routed else None,
        "need": need_summary(session.get(NeedRow, deal.need_id)),
        "technology": technology_summary(session.get(TechnologyRow, deal.technology_id)),
        "created_at": deal.created_at.isoformat(),
        "updated_at": deal.updated_at.isoformat(),
    }
    if events:
        rows = session.scalars(
            select(DealEventRow)
            .where(DealEventRow.deal_id == deal.id)
            .order_by(DealEventRow.created_at, DealEventRow.id)
        )
        out["events"] = [event_view(e) for e in rows]
    return out


def visible_deal(session: Session, caller: Caller, deal_id: int) -> DealRow:
    """A deal the caller may see: their own, or any for an admin; otherwise 404."""
    deal = session.get(DealRow, deal_id)
    if deal is None or (caller.broker is not None and deal.broker_id != caller.broker.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no deal {deal_id} among your deals")
    return deal


@router.post("/brokers/me/inbox/{routed_id}/claim", status_code=status.HTTP_201_CREATED)
def claim(routed_id: int, caller: BrokerDep, session: SessionDep) -> dict[str, Any]:
    """Take an inbox item on as a deal (stage ``claimed``), audited."""
    broker = caller.broker
    assert broker is not None
    routed = own_routed(session, broker, routed_id)
    if routed.state == "claimed":
        existing = session.scalar(select(DealRow.id).where(DealRow.routed_id == routed.id))
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"inbox item {routed_id} is already claimed as deal {existing}",
        )
    if routed.state == "declined":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"inbox item {routed_id} was declined and can no longer be claimed",
        )
    if broker.valid_until < date.today():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"your certificate expired on {broker.valid_until.isoformat()}; "
            "ask an administrator to renew it before claiming new deals",
        )
    deal = DealRow(
        routed_id=routed.id,
        broker_id=broker.id,
        need_id=routed.need_id,
        technology_id=routed.technology_id,
        stage="claimed",
    )
    session.add(deal)
    routed.state = "claimed"
    try:
        session.flush()
        session.add(
            DealEventRow(
                deal_id=deal.id,
                actor=caller.actor,
                kind="stage",
                from_stage=None,
                to_stage="claimed",
                note=f"claimed inbox item {routed.id}",
            )
        )
        session.commit()
    except IntegrityError:  # a concurrent claim of the same item won
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"inbox item {routed_id} is already claimed"
        ) from None
    return deal_view(session, deal, events=True)


@router.get("/deals")
def list_deals(
    caller: DealCallerDep,
    session: SessionDep,
    stage: Annotated[
        Literal["claimed", "contacted", "nda_signed", "negotiating", "agreed", "closed_lost"]
        | None,
        Query(description="only deals in this stage"),
    ] = None,
    broker: Annotated[str | None, Query(description="admins: only this broker's deals")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The caller's deals (an admin sees everyone's), newest first."""
    query = select(DealRow)
    if caller.broker is not None:
        query = query.where(DealRow.broker_id == caller.broker.id)
    elif broker is not None:
        row = session.scalar(select(BrokerRow).where(BrokerRow.ref == broker))
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no broker {broker!r}")
        query = query.where(DealRow.broker_id == row.id)
    if stage is not None:
        query = query.where(DealRow.stage == stage)
    deals = session.scalars(
        query.order_by(DealRow.created_at.desc(), DealRow.id.desc()).limit(limit).offset(offset)
    )
    items = [deal_view(session, d) for d in deals]
    return {"count": len(items), "items": items, "stages": list(STAGES)}


@router.get("/deals/{deal_id}")
def get_deal(deal_id: int, caller: DealCallerDep, session: SessionDep) -> dict[str, Any]:
    """One deal with its audit trail (who changed what, when)."""
    return deal_view(session, visible_deal(session, caller, deal_id), events=True)


@router.post("/deals/{deal_id}/stage")
def move_stage(
    deal_id: int, body: StageIn, caller: DealCallerDep, session: SessionDep
) -> dict[str, Any]:
    """Move the deal one stage forward, or to ``closed_lost`` with a reason (illegal → 409)."""
    deal = visible_deal(session, caller, deal_id)
    change_stage(session, deal, to=body.to, actor=caller.actor, note=body.note, reason=body.reason)
    session.commit()
    return deal_view(session, deal, events=True)


@router.post("/deals/{deal_id}/notes", status_code=status.HTTP_201_CREATED)
def post_note(
    deal_id: int, body: NoteIn, caller: DealCallerDep, session: SessionDep
) -> dict[str, Any]:
    """Add a note to the deal's audit trail."""
    deal = visible_deal(session, caller, deal_id)
    event = add_note(session, deal, actor=caller.actor, note=body.note)
    session.commit()
    return event_view(event)
