"""Routes for brokers: their profile, webhook, inbox of routed matches and feedback on them."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from api.deps import (
    ApiSettingsDep,
    BrokerDep,
    EngineDep,
    Offset,
    ReaderLangDep,
    RecordId,
    SessionDep,
)
from matcher.deal import DECLINE_REASONS
from matcher.permissions import Action, require
from matcher.store.models import (
    BrokerRow,
    NeedRow,
    RoutedMatchRow,
    TechnologyRow,
)
from matcher.store.repo import deals as deals_repo
from matcher.store.repo.routing import broker_load
from matcher.webhook_policy import check_webhook_url

router = APIRouter(prefix="/api/v1", tags=["brokers"])

INBOX_STATES = ("new", "seen", "claimed", "declined", "returned")


# Why a broker turned a routed match down (kept for ranking work): the engine's list.
DeclineReason = StrEnum("DeclineReason", {code: code for code in DECLINE_REASONS})  # type: ignore[misc]


# -- shared views (also used by the deal and admin routes) ---------------------------------
def certificate_status(broker: BrokerRow, today: date | None = None) -> dict[str, Any]:
    """Whether the broker's certificate lets them receive matches today, and why not."""
    today = today or date.today()
    days_left = (broker.valid_until - today).days
    if broker.suspended:
        state = "suspended"
    elif days_left < 0:
        state = "expired"
    else:
        state = "valid"
    return {
        "status": state,
        "valid": state == "valid",
        "valid_until": broker.valid_until.isoformat(),
        "days_left": days_left,
    }


def broker_view(
    session: Session, broker: BrokerRow, *, today: date | None = None
) -> dict[str, Any]:
    """A broker's public profile with certificate status and workload (never the secret)."""
    load = broker_load(session, broker.id)
    return {
        "id": broker.id,
        "ref": broker.ref,
        "name": broker.name,
        "email": broker.email,
        "certificate_no": broker.certificate_no,
        "level": broker.level,
        "valid_until": broker.valid_until.isoformat(),
        "certificate": certificate_status(broker, today),
        "suspended": broker.suspended,
        "domains": list(broker.domains),
        "regions": list(broker.regions),
        "capacity": broker.capacity,
        "load": load,
        "free_capacity": max(broker.capacity - load, 0),
        "webhook_url": broker.webhook_url,
        "webhook_secret_set": bool(broker.webhook_secret),
    }


def need_summary(need: NeedRow | None, *, full: bool = False) -> dict[str, Any] | None:
    """A need as a broker sees it: before a claim a teaser (field, TRL, region, the problem
    statement), without the enterprise's name and contact; ``full`` after the claim."""
    if need is None:
        return None
    out: dict[str, Any] = {
        "id": need.id,
        "ref": need.ref,
        "title": need.title,
        "description": need.description,
        "domains": list(need.domains),
        "domains_inferred": need.domains_inferred,
        "domain_confidence": need.domain_confidence,
        "trl_min": need.trl_min,
        "trl_max": need.trl_max,
        "region_scope": need.region_scope,
        "home_region": need.home_region,
        "budget_min": need.budget_min,
        "budget_max": need.budget_max,
        "currency": need.currency,
        "deadline": need.deadline.isoformat() if need.deadline else None,
        "status": need.status,
    }
    if full:
        out["enterprise"], out["contact"] = need.enterprise, need.contact
    return out


def technology_summary(tech: TechnologyRow | None, *, full: bool = False) -> dict[str, Any] | None:
    """A technology as a broker sees it: a teaser without its owner before a claim."""
    if tech is None:
        return None
    out: dict[str, Any] = {
        "id": tech.id,
        "ref": tech.ref,
        "title": tech.title,
        "description": tech.description,
        "domains": list(tech.domains),
        "domains_inferred": tech.domains_inferred,
        "domain_confidence": tech.domain_confidence,
        "trl": tech.trl,
        "region": tech.region,
        "ip_status": tech.ip_status,
        "licensing": tech.licensing,
        "status": tech.status,
    }
    if full:
        out["owner"], out["contact"] = tech.owner, tech.contact
    return out


def routed_view(
    session: Session, routed: RoutedMatchRow, *, state: str | None = None, lang: str = "en"
) -> dict:
    """One inbox item with the need and technology it pairs, explained in ``lang``."""
    claimed = routed.state == "claimed"
    return {
        "id": routed.id,
        "state": state or routed.state,
        "score": round(routed.score, 4),
        "rank": routed.rank,
        "components": routed.components,
        "explanation": (routed.explanations or {}).get(lang, routed.explanation),
        "reason": (routed.reasons or {}).get(lang, routed.reason),
        "routed_at": routed.created_at.isoformat() if routed.created_at else None,
        # the parties' names and contact only once the broker has claimed it
        "need": need_summary(session.get(NeedRow, routed.need_id), full=claimed),
        "technology": technology_summary(
            session.get(TechnologyRow, routed.technology_id), full=claimed
        ),
    }


def own_routed(session: Session, broker: BrokerRow, routed_id: int) -> RoutedMatchRow:
    """The caller's own inbox item; anyone else's is reported as absent (404)."""
    routed = session.get(RoutedMatchRow, routed_id)
    if routed is None or routed.broker_id != broker.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no inbox item {routed_id} in your inbox")
    return routed


# -- request bodies ----------------------------------------------------------------------
class WebhookIn(BaseModel):
    """Where routed matches are POSTed, and the secret their HMAC signature uses.

    The URL's form is checked here; where it may point (https, public addresses only) by
    ``matcher.webhook_policy`` in ``set_webhook``, which knows the environment.
    """

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    secret: Annotated[str, StringConstraints(min_length=16, max_length=128)] = Field(
        description="shared secret for the X-TechMatch-Signature HMAC (16–128 characters)"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "http_url",
                "must be an absolute http:// or https:// URL, e.g. https://example.org/hook",
            )
        if parts.username or parts.password:
            raise PydanticCustomError(
                "http_url", "must not contain credentials; use the secret for authentication"
            )
        return value


class FeedbackIn(BaseModel):
    """A broker's verdict on an inbox item."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "decline"]
    reason_code: DeclineReason | None = None
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


# -- endpoints ---------------------------------------------------------------------------
@router.get("/brokers/me")
def me(caller: BrokerDep, session: SessionDep) -> dict[str, Any]:
    """The calling broker's profile, certificate status and workload."""
    assert caller.broker is not None
    return broker_view(session, caller.broker)


@router.put("/brokers/me/webhook")
def set_webhook(
    body: WebhookIn, caller: BrokerDep, session: SessionDep, settings: ApiSettingsDep
) -> dict[str, Any]:
    """Set the URL that receives each routed match, signed with the given secret.

    The URL must be https:// to a public address (http:// to this machine in development);
    anything else answers 422 with the reason.
    """
    broker = caller.broker
    assert broker is not None
    require(caller.acting, Action.set_webhook)
    check_webhook_url(body.url, development=settings.development)
    broker.webhook_url = body.url
    broker.webhook_secret = body.secret
    session.commit()
    return broker_view(session, broker)


@router.delete("/brokers/me/webhook")
def remove_webhook(caller: BrokerDep, session: SessionDep) -> dict[str, Any]:
    """Stop webhook deliveries."""
    broker = caller.broker
    assert broker is not None
    require(caller.acting, Action.set_webhook)  # removing one is setting it: not when lapsed
    broker.webhook_url = None
    broker.webhook_secret = None
    session.commit()
    return broker_view(session, broker)


@router.get("/brokers/me/inbox")
def inbox(
    caller: BrokerDep,
    session: SessionDep,
    lang: ReaderLangDep,
    state: Annotated[
        Literal["new", "seen", "claimed", "declined", "returned"] | None,
        Query(
            description="only items in this state: new, seen, claimed, declined or returned "
            "(taken back from you while suspended or expired, routed again)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The caller's routed matches, newest first; items read for the first time become seen.

    Each item shows the state it had when read (so ``new`` marks what is fresh).
    """
    broker = caller.broker
    assert broker is not None
    require(caller.acting, Action.read_inbox)
    rows = deals_repo.inbox(session, broker_id=broker.id, state=state, limit=limit, offset=offset)
    items = [routed_view(session, row, lang=lang) for row in rows]
    for row in rows:
        if row.state == "new":
            row.state = "seen"
    session.commit()
    return {"broker": broker.ref, "count": len(items), "items": items}


@router.get("/brokers/me/inbox/{routed_id}")
def inbox_item(
    routed_id: RecordId, caller: BrokerDep, session: SessionDep, lang: ReaderLangDep
) -> dict[str, Any]:
    """One inbox item (marks it seen)."""
    assert caller.broker is not None
    require(caller.acting, Action.read_inbox)
    routed = own_routed(session, caller.broker, routed_id)
    view = routed_view(session, routed, lang=lang)
    if routed.state == "new":
        routed.state = "seen"
        session.commit()
    return view


@router.post(
    "/brokers/me/inbox/{routed_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The item was already decided this way: the stored verdict."}},
)
def feedback(
    routed_id: RecordId,
    body: FeedbackIn,
    request: Request,
    caller: BrokerDep,
    engine: EngineDep,
    response: Response,
) -> dict[str, Any]:
    """Accept or decline an inbox item; a decline needs a reason code and frees capacity.

    Accepting an item twice stores one verdict (the repeat answers 200 with the first).
    """
    broker = caller.broker
    assert broker is not None
    require(caller.acting, Action.feedback)
    row, state, created = engine.feedback(
        broker.id,
        routed_id,
        decision=body.decision,
        reason_code=body.reason_code.value if body.reason_code else None,
        comment=body.comment,
        reroute=False,
    )
    if created and body.decision == "decline":  # capacity freed: route what waits
        request.app.state.worker.submit("unrouted")
    if not created:
        response.status_code = status.HTTP_200_OK
    return {
        "id": row.id,
        "routed_id": routed_id,
        "decision": row.decision,
        "reason_code": row.reason_code,
        "comment": row.comment,
        "state": state,
        "created_at": row.created_at.isoformat(),
    }


@router.get("/brokers/decline-reasons", tags=["brokers"])
def decline_reasons(_: BrokerDep) -> list[str]:
    """The reason codes a decline may give."""
    return [c.value for c in DeclineReason]


__all__ = [
    "INBOX_STATES",
    "broker_view",
    "certificate_status",
    "need_summary",
    "own_routed",
    "routed_view",
    "technology_summary",
]
