"""Broker competency: certificate history, training records and track record (an admin for
any broker, a broker for themself); a level upgrade; an operator's reassignment of an inbox
item."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, status

from api.deps import AdminDep, BrokerDep, ReaderLangDep, RecordId, RecordKey, SessionDep
from api.routes.admin import get_broker
from api.routes.brokers import broker_view
from api.schemas.competency import (
    BrokerOut,
    CompetencyOut,
    ReassignIn,
    ReassignOut,
    TrainingIn,
    TrainingOut,
    UpgradeIn,
)
from api.worker import announce
from matcher import competency
from matcher.reassign import reassign as reassign_item

router = APIRouter(prefix="/api/v1", tags=["competency"])


@router.get("/brokers/me/competency", response_model=CompetencyOut)
def my_competency(caller: BrokerDep, session: SessionDep) -> dict[str, Any]:
    """The calling broker's certificate history, training records and track record."""
    assert caller.broker is not None
    return competency.competency(session, caller.broker)


@router.get("/brokers/{ref}/competency", response_model=CompetencyOut)
def broker_competency(ref: RecordKey, _: AdminDep, session: SessionDep) -> dict[str, Any]:
    """A broker's certificate history, training records (course, level, date, hours, training
    base) and track record (routed, accepted, declined by reason, deals, agreed value, median
    days per stage)."""
    return competency.competency(session, get_broker(session, ref))


@router.post(
    "/brokers/{ref}/trainings", status_code=status.HTTP_201_CREATED, response_model=TrainingOut
)
def add_training(
    ref: RecordKey, body: TrainingIn, _: AdminDep, session: SessionDep
) -> dict[str, Any]:
    """Record a course the broker took (hours 0.5–400, a date not in the future)."""
    broker = get_broker(session, ref)
    row = competency.add_training(session, broker, body.model_dump(), today=date.today())
    session.commit()
    return competency.training_view([row])[0]


@router.post("/brokers/{ref}/upgrade", response_model=BrokerOut)
def upgrade(
    ref: RecordKey, body: UpgradeIn, request: Request, caller: AdminDep, session: SessionDep
) -> dict[str, Any]:
    """Record a level upgrade with the new certificate's number and validity (a level above the
    current one; 409 when the number belongs to another broker)."""
    broker = get_broker(session, ref)
    competency.upgrade(
        session,
        broker,
        level=body.level.value,
        certificate_no=body.certificate_no,
        valid_until=body.valid_until,
        actor=caller.actor,
        today=date.today(),
        note=body.note,
    )
    session.commit()
    request.app.state.worker.submit("unrouted")  # a higher level may take what waited
    return broker_view(session, broker)


@router.post("/routed/{routed_id}/reassign", response_model=ReassignOut)
def reassign(
    routed_id: RecordId,
    body: ReassignIn,
    request: Request,
    caller: AdminDep,
    session: SessionDep,
    lang: ReaderLangDep,
) -> dict[str, Any]:
    """Move an unclaimed inbox item to another broker in good standing with free capacity; the
    previous broker no longer sees it. Audited on the need (``GET /admin/audit``)."""
    moved = reassign_item(session, routed_id, body.broker, actor=caller.actor, today=date.today())
    item = moved.item
    out = {
        "id": item.id,
        "state": item.state,
        "broker": moved.broker,
        "previous_broker": moved.previous,
        "need": moved.need,
        "reason": (item.reasons or {}).get(lang, item.reason),
    }
    session.commit()
    announce(request.app.state.engine, request.app.state.api_settings, [item.id])
    return out
