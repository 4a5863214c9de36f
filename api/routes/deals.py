"""Routes for deals: claiming an inbox item, moving it through the pipeline, notes, the audit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import BrokerDep, Caller, CallerDep, EngineDep, Offset, RecordId, SessionDep
from api.routes.brokers import need_summary, technology_summary
from api.schemas.market import contract_view
from matcher import market
from matcher.deal import STAGES, add_note, allowed
from matcher.domain import ContractIn
from matcher.errors import ConflictError, InvalidInputError
from matcher.permissions import Action, require
from matcher.store.models import (
    BrokerRow,
    DealEventRow,
    DealRow,
    NeedRow,
    RoutedMatchRow,
    TechnologyRow,
)
from matcher.store.repo import deals as deals_repo

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
    contract: ContractIn | None = Field(
        default=None, description="with ``to: agreed`` only: the contract's registration"
    )


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
        "contract": contract_view(deal),
        "broker": broker.ref if broker else None,
        "routed_id": deal.routed_id,
        "score": round(routed.score, 4) if routed else None,
        # the deal's broker (or an admin) sees the parties in full
        "need": need_summary(session.get(NeedRow, deal.need_id), full=True),
        "technology": technology_summary(session.get(TechnologyRow, deal.technology_id), full=True),
        "created_at": deal.created_at.isoformat(),
        "updated_at": deal.updated_at.isoformat(),
    }
    if events:
        out["events"] = [event_view(e) for e in deals_repo.events(session, deal.id)]
    return out


def visible_deal(session: Session, caller: Caller, deal_id: int) -> DealRow:
    """A deal the caller may see: their own, or any for an admin; otherwise 404."""
    deal = deals_repo.deal(session, deal_id)
    if deal is None or (caller.broker is not None and deal.broker_id != caller.broker.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no deal {deal_id} among your deals")
    return deal


@router.post("/brokers/me/inbox/{routed_id}/claim", status_code=status.HTTP_201_CREATED)
def claim(
    routed_id: RecordId, caller: BrokerDep, engine: EngineDep, session: SessionDep
) -> dict[str, Any]:
    """Take an inbox item on as a deal (stage ``claimed``), audited."""
    broker = caller.broker
    assert broker is not None
    require(caller.acting, Action.claim)
    try:
        deal_id = engine.claim(broker.id, routed_id, actor=caller.actor)
    except IntegrityError:  # a concurrent claim of the same item won
        raise ConflictError(f"inbox item {routed_id} is already claimed") from None
    session.expire_all()
    return deal_view(session, visible_deal(session, caller, deal_id), events=True)


@router.get("/deals")
def list_deals(
    caller: DealCallerDep,
    engine: EngineDep,
    session: SessionDep,
    stage: Annotated[
        Literal["claimed", "contacted", "nda_signed", "negotiating", "agreed", "closed_lost"]
        | None,
        Query(description="only deals in this stage"),
    ] = None,
    broker: Annotated[str | None, Query(description="admins: only this broker's deals")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The caller's deals (an admin sees everyone's), newest first."""
    broker_id = None
    if caller.broker is not None:
        broker_id = caller.broker.id
    elif broker is not None:
        broker_id = engine.broker(broker).id
    rows = deals_repo.deals(session, broker_id=broker_id, stage=stage, limit=limit, offset=offset)
    items = [deal_view(session, d) for d in rows]
    return {"count": len(items), "items": items, "stages": list(STAGES)}


@router.get("/deals/{deal_id}")
def get_deal(deal_id: RecordId, caller: DealCallerDep, session: SessionDep) -> dict[str, Any]:
    """One deal with its audit trail (who changed what, when)."""
    return deal_view(session, visible_deal(session, caller, deal_id), events=True)


@router.post("/deals/{deal_id}/stage")
def move_stage(
    deal_id: RecordId,
    body: StageIn,
    request: Request,
    caller: DealCallerDep,
    engine: EngineDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Move the deal one stage forward, or to ``closed_lost`` with a reason (illegal → 409);
    moving it to ``agreed`` may record its contract (``contract``) too."""
    visible_deal(session, caller, deal_id)
    require(caller.acting, Action.work_deal)
    if body.contract is not None and body.to != "agreed":
        raise InvalidInputError("contract: a contract is recorded when the deal moves to agreed")
    ended = engine.change_stage(
        deal_id,
        to=body.to,
        actor=caller.actor,
        broker_id=caller.broker.id if caller.broker is not None else None,
        note=body.note,
        reason=body.reason,
        reroute=False,
    )
    if ended:  # the broker can take another match: route what waits
        request.app.state.worker.submit("unrouted")
    session.expire_all()
    if body.contract is not None:  # the deal is agreed now; a failure here leaves it to PUT
        deal = visible_deal(session, caller, deal_id)
        market.record_contract(session, deal, body.contract, actor=caller.actor)
        session.commit()
    return deal_view(session, visible_deal(session, caller, deal_id), events=True)


@router.put("/deals/{deal_id}/contract")
def put_contract(
    deal_id: RecordId, body: ContractIn, caller: DealCallerDep, session: SessionDep
) -> dict[str, Any]:
    """Record or correct the contract of an agreed deal (another stage → 409), audited."""
    deal = visible_deal(session, caller, deal_id)
    require(caller.acting, Action.work_deal)
    market.record_contract(session, deal, body, actor=caller.actor)
    session.commit()
    return deal_view(session, visible_deal(session, caller, deal_id), events=True)


@router.post("/deals/{deal_id}/notes", status_code=status.HTTP_201_CREATED)
def post_note(
    deal_id: RecordId, body: NoteIn, caller: DealCallerDep, session: SessionDep
) -> dict[str, Any]:
    """Add a note to the deal's audit trail."""
    deal = visible_deal(session, caller, deal_id)
    require(caller.acting, Action.work_deal)
    event = add_note(session, deal, actor=caller.actor, note=body.note)
    session.commit()
    return event_view(event)
