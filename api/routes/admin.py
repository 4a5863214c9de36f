"""Administration: certify, renew, suspend and reinstate brokers; watch webhook deliveries."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from api.deps import AdminDep, EngineDep, Offset, ReaderLangDep, RecordKey, SessionDep
from api.routes.brokers import broker_view
from matcher.domain import BrokerIn, BrokerLevel, Side
from matcher.ingest import validate_record
from matcher.store import repo
from matcher.store.models import BrokerRow
from matcher.store.repo import brokers as brokers_repo
from matcher.store.repo.ownership import record_events
from matcher.store.repo.tokens import issue_token

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class RenewIn(BaseModel):
    """A new validity date (and optionally a new level) for a broker's certificate."""

    model_config = ConfigDict(extra="forbid")

    valid_until: date
    level: BrokerLevel | None = None


def get_broker(session: Session, ref: str) -> BrokerRow:
    """A broker by reference (e.g. B-01) or numeric id; 404 otherwise."""
    broker = repo.get_by_ref_or_id(session, BrokerRow, ref)
    if broker is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no broker {ref!r}")
    return broker


@router.post("/brokers", status_code=status.HTTP_201_CREATED)
def certify(
    request: Request,
    _: AdminDep,
    engine: EngineDep,
    session: SessionDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description="a broker record as in data/FORMATS.md: name, certificate_no, level, "
            "valid_until, domains, regions, capacity, email; id (e.g. B-13) optional",
            examples=[
                {
                    "id": "B-13",
                    "name": "Li Na",
                    "certificate_no": "TM-2026-INT-00301",
                    "level": "intermediate",
                    "valid_until": "2028-12-31",
                    "domains": ["04.06"],
                    "regions": ["CN"],
                    "capacity": 10,
                    "email": "li.na@example.org",
                }
            ],
        ),
    ],
) -> dict[str, Any]:
    """Certify a new broker (validated like an import); returns it with a one-time API token."""
    raw = dict(body)
    if raw.get("id") in (None, ""):
        raw["id"] = brokers_repo.next_ref(session)
    record = validate_record("brokers", raw, engine.taxonomy)
    assert isinstance(record, BrokerIn)
    if brokers_repo.ref_taken(session, record.id):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"broker {record.id} already exists; renew, suspend or reinstate it instead",
        )
    if brokers_repo.certificate_holder(session, record.certificate_no) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"certificate number {record.certificate_no} belongs to another broker",
        )
    broker, _created = repo.upsert_broker(session, record=record, actor="admin")
    session.flush()
    token = issue_token(session, role="broker", broker_id=broker.id, label="certified via API")
    session.commit()
    request.app.state.worker.submit("unrouted")  # a new broker may take what nobody could
    out = broker_view(session, broker)
    out["token"] = token
    out["token_note"] = "shown once; store it now (only its hash is kept)"
    return out


@router.get("/brokers")
def list_brokers(
    _: AdminDep,
    session: SessionDep,
    certificate: Annotated[
        Literal["valid", "expired", "suspended"] | None,
        Query(description="only brokers whose certificate is in this state"),
    ] = None,
) -> dict[str, Any]:
    """Every broker with certificate status and workload."""
    today = date.today()
    items = [broker_view(session, b, today=today) for b in brokers_repo.by_ref(session)]
    if certificate is not None:
        items = [b for b in items if b["certificate"]["status"] == certificate]
    return {"count": len(items), "items": items}


@router.get("/brokers/{ref}")
def show_broker(ref: RecordKey, _: AdminDep, session: SessionDep) -> dict[str, Any]:
    """One broker with certificate status and workload."""
    return broker_view(session, get_broker(session, ref))


@router.post("/brokers/{ref}/renew")
def renew(
    ref: RecordKey,
    body: RenewIn,
    request: Request,
    _: AdminDep,
    engine: EngineDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Set a new validity date (today or later) and level; waiting needs are routed again."""
    level = body.level.value if body.level is not None else None
    engine.set_broker_status(ref, valid_until=body.valid_until, level=level, reroute=False)
    request.app.state.worker.submit("unrouted")
    return broker_view(session, get_broker(session, ref))


@router.post("/brokers/{ref}/suspend")
def suspend(
    ref: RecordKey, request: Request, _: AdminDep, engine: EngineDep, session: SessionDep
) -> dict[str, Any]:
    """Suspend a broker: their token is refused, their unclaimed matches go to other brokers."""
    engine.set_broker_status(ref, suspended=True, reroute=False)
    request.app.state.worker.submit("unrouted")
    return broker_view(session, get_broker(session, ref))


@router.post("/brokers/{ref}/reinstate")
def reinstate(
    ref: RecordKey, request: Request, _: AdminDep, engine: EngineDep, session: SessionDep
) -> dict[str, Any]:
    """Lift a suspension; needs nobody could take are routed again."""
    engine.set_broker_status(ref, suspended=False, reroute=False)
    request.app.state.worker.submit("unrouted")
    return broker_view(session, get_broker(session, ref))


@router.get("/unrouted")
def unrouted(
    _: AdminDep,
    engine: EngineDep,
    lang: ReaderLangDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Needs no eligible broker could take, oldest first, each with the reason."""
    total, needs = engine.unrouted_needs(limit=limit, offset=offset)
    items = [
        {
            "id": n.id,
            "ref": n.ref,
            "title": n.title,
            "enterprise": n.enterprise,
            "domains": list(n.domains),
            "domains_inferred": n.domains_inferred,
            "domain_confidence": n.domain_confidence,
            "home_region": n.home_region,
            "region_scope": n.region_scope,
            "reason": (n.routing_reason or {}).get(lang, (n.routing_reason or {}).get("en")),
            "since": n.updated_at.isoformat() if n.updated_at else None,
        }
        for n in needs
    ]
    return {"total": total, "count": len(items), "items": items}


@router.post("/unrouted/route")
def route_unrouted(_: AdminDep, engine: EngineDep) -> dict[str, Any]:
    """Route again now: matches of lapsed brokers and needs nobody could take."""
    outcomes = [o.as_dict() for o in engine.route_unrouted()]
    still = sum(1 for o in outcomes if o["state"] == "unrouted")
    return {"attempted": len(outcomes), "still_unrouted": still, "outcomes": outcomes}


@router.get("/audit")
def audit_trail(
    _: AdminDep,
    session: SessionDep,
    side: Annotated[Side | None, Query(description="technologies or needs")] = None,
    ref: Annotated[str | None, Query(max_length=64, description="one record's reference")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> dict[str, Any]:
    """Every change to technologies and needs: who, when, which fields, before and after."""
    rows = record_events(session, side=side, ref=ref, limit=limit, offset=offset)
    items = [
        {
            "id": e.id,
            "at": e.created_at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "side": e.side,
            "ref": e.ref,
            "fields": e.fields,
            "before": e.before,
            "after": e.after,
        }
        for e in rows
    ]
    return {"count": len(items), "items": items}


@router.post("/brokers/{ref}/tokens", status_code=status.HTTP_201_CREATED)
def new_token(
    ref: RecordKey,
    _: AdminDep,
    session: SessionDep,
    revoke_others: Annotated[bool, Query(description="revoke the broker's older tokens")] = False,
) -> dict[str, Any]:
    """Issue another API token for a broker (shown once)."""
    broker = get_broker(session, ref)
    if revoke_others:
        brokers_repo.revoke_tokens(session, broker.id)
    token = issue_token(session, role="broker", broker_id=broker.id, label="issued via API")
    session.commit()
    return {"broker": broker.ref, "token": token, "token_note": "shown once; store it now"}


@router.get("/webhook-deliveries")
def webhook_deliveries(
    _: AdminDep,
    session: SessionDep,
    delivery_status: Annotated[
        Literal["pending", "delivered", "failed"] | None,
        Query(alias="status", description="only deliveries in this state"),
    ] = None,
    broker: Annotated[str | None, Query(description="only this broker's deliveries")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every webhook delivery with its attempts and last error, newest first."""
    broker_id = get_broker(session, broker).id if broker is not None else None
    rows = brokers_repo.webhook_deliveries(
        session, status=delivery_status, broker_id=broker_id, limit=limit, offset=offset
    )
    items = [
        {
            "id": d.id,
            "broker": ref,
            "routed_id": d.routed_id,
            "url": d.url,
            "status": d.status,
            "attempts": d.attempts,
            "last_status_code": d.last_status_code,
            "last_error": d.last_error,
            "created_at": d.created_at.isoformat(),
            "updated_at": d.updated_at.isoformat(),
        }
        for d, ref in rows
    ]
    return {"count": len(items), "items": items}
