"""The broker console (``/broker``): the inbox, claims, verdicts, the deal board and search.

A certified broker signs in with the token an operator issued (``matcher token issue``); it is
exchanged for a signed, HttpOnly session cookie naming the token, which is checked against the
store on every request (a revoked token or a suspended broker is signed out at once). Every
form carries the CSRF token. Pages are server-rendered in English or Chinese and need no
JavaScript. The same rules as the JSON API apply (``matcher.permissions``, ``matcher.deal``):
an engine error is shown with the status the API would answer.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep
from api.routes.brokers import routed_view
from api.routes.deals import deal_view
from api.web.console_session import Console, csrf_failed, failed, page, posted_form
from api.web.i18n import t
from api.web.pages import choose_language
from matcher import deal as deal_rules
from matcher import market
from matcher.domain import ContractType
from matcher.engine import Engine
from matcher.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from matcher.permissions import Action, Actor, require
from matcher.store.models import BrokerRow
from matcher.store.repo import deals as deals_repo

router = APIRouter(include_in_schema=False)
CONSOLE = Console(
    role="broker", cookie="tm_broker", salt="techmatch-broker-session", home="/broker"
)
SESSION_COOKIE = CONSOLE.cookie


def signed_in(request: Request, engine: Engine, settings: ApiSettings) -> BrokerRow | None:
    """The broker of the session cookie, while their token is live and they are not suspended."""
    token = CONSOLE.session_token(request, engine, settings)
    if token is None or token.broker_id is None:
        return None
    with engine.sessions() as session:
        broker = session.get(BrokerRow, token.broker_id)
        if broker is None or broker.suspended:
            return None
        session.expunge(broker)
        return broker


def _to_login(lang: str) -> Response:
    return CONSOLE.to_login(lang)


def _failed(request: Request, lang: str, exc: Exception, back: str) -> HTMLResponse:
    return failed(request, lang, exc, back, title=t(lang, "broker.failed"))


# -- signing in ------------------------------------------------------------------------
@router.get("/broker/login", response_class=HTMLResponse)
def login_form(request: Request, settings: ApiSettingsDep) -> Response:
    lang, _ = choose_language(request)
    return page(
        request, settings, "broker_login.html", lang, {"page_title": t(lang, "broker.login")}
    )


@router.post("/broker/login", response_class=HTMLResponse)
async def login(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Exchange a broker's API token for a session cookie."""
    lang, _ = choose_language(request)
    fields = await posted_form(request, settings)
    if fields is None:
        return csrf_failed(request, lang, f"/broker/login?lang={lang}")
    token = CONSOLE.check_token(engine, fields.get("token", ""))
    broker = None
    if token is not None and token.broker_id is not None:
        with engine.sessions() as session:
            broker = session.get(BrokerRow, token.broker_id)
    if token is None or broker is None or broker.suspended:
        context = {"page_title": t(lang, "broker.login"), "error": t(lang, "broker.bad_token")}
        return page(request, settings, "broker_login.html", lang, context, 401)
    return CONSOLE.start(request, settings, token, f"/broker?lang={lang}")


@router.post("/broker/logout", response_class=HTMLResponse)
async def logout(request: Request, settings: ApiSettingsDep) -> Response:
    lang, _ = choose_language(request)
    if await posted_form(request, settings) is None:
        return _to_login(lang)
    return CONSOLE.end(lang)


# -- the inbox ---------------------------------------------------------------------------
@router.get("/broker", response_class=HTMLResponse)
def inbox(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Routed matches with their explanations and why each came to this broker."""
    lang, _ = choose_language(request)
    broker = signed_in(request, engine, settings)
    if broker is None:
        return _to_login(lang)
    state = request.query_params.get("state") or None
    try:
        require(Actor.of(admin=False, broker=broker), Action.read_inbox)
    except PermissionDeniedError as exc:
        return _failed(request, lang, exc, f"/broker/deals?lang={lang}")
    with engine.sessions() as session:
        rows = deals_repo.inbox(session, broker_id=broker.id, state=state, limit=200, offset=0)
        items = [routed_view(session, row, lang=lang) for row in rows]
        for row in rows:
            if row.state == "new":
                row.state = "seen"
        session.commit()
    context = {
        "page_title": t(lang, "broker.inbox"),
        "broker": broker,
        "items": items,
        "state": state or "",
        "reasons": deal_rules.DECLINE_REASONS,
        "done": request.query_params.get("done", ""),
    }
    return page(request, settings, "broker_inbox.html", lang, context)


async def _act(request: Request, engine: Engine, settings: ApiSettings, act: Any) -> Response:
    """Run one console action for the signed-in broker (CSRF checked), then back to ``done``."""
    lang, _ = choose_language(request)
    broker = signed_in(request, engine, settings)
    if broker is None:
        return _to_login(lang)
    fields = await posted_form(request, settings)
    back = request.headers.get("referer") or f"/broker?lang={lang}"
    if fields is None:
        return csrf_failed(request, lang, back)
    try:
        where = act(broker, fields)
    except (NotFoundError, PermissionDeniedError, ConflictError, InvalidInputError) as exc:
        return _failed(request, lang, exc, back)
    separator = "&" if "?" in where else "?"
    return RedirectResponse(f"{where}{separator}lang={lang}", status_code=303)


@router.post("/broker/inbox/{routed_id}/claim", response_class=HTMLResponse)
async def claim(
    routed_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    def act(broker: BrokerRow, fields: dict[str, str]) -> str:
        require(Actor.of(admin=False, broker=broker), Action.claim)
        deal_id = engine.claim(broker.id, routed_id, actor=f"broker:{broker.ref}")
        return f"/broker/deals?done=claimed#deal-{deal_id}"

    return await _act(request, engine, settings, act)


@router.post("/broker/inbox/{routed_id}/verdict", response_class=HTMLResponse)
async def verdict(
    routed_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Accept, or decline with a reason (which frees capacity: waiting needs are routed)."""

    def act(broker: BrokerRow, fields: dict[str, str]) -> str:
        require(Actor.of(admin=False, broker=broker), Action.feedback)
        decision = fields.get("decision", "")
        reason = fields.get("reason_code") or None
        _, _, created = engine.feedback(
            broker.id,
            routed_id,
            decision=decision,
            reason_code=reason if decision == "decline" else None,
            comment=fields.get("comment") or None,
            reroute=False,
        )
        if created and decision == "decline":
            request.app.state.worker.submit("unrouted")
        return f"/broker?done={decision}"

    return await _act(request, engine, settings, act)


# -- the deal board ----------------------------------------------------------------------
@router.get("/broker/deals", response_class=HTMLResponse)
def deals(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """The broker's deals by stage, with notes, due dates and the parties' contacts."""
    lang, _ = choose_language(request)
    broker = signed_in(request, engine, settings)
    if broker is None:
        return _to_login(lang)
    today = date.today()
    with engine.sessions() as session:
        rows = deals_repo.deals(session, broker_id=broker.id, stage=None, limit=500, offset=0)
        cards = []
        for row in rows:
            card = deal_view(session, row, events=True)
            card["due_on"] = row.due_on
            card["overdue"] = bool(
                row.due_on and row.due_on < today and row.stage in deal_rules.OPEN
            )
            card["notes"] = [e for e in card["events"] if e["kind"] == "note"]
            cards.append(card)
    board = [(stage, [c for c in cards if c["stage"] == stage]) for stage in deal_rules.STAGES]
    context = {
        "page_title": t(lang, "broker.deals"),
        "broker": broker,
        "board": board,
        "overdue": sum(c["overdue"] for c in cards),
        "today": today.isoformat(),
        "contract_types": [c.value for c in ContractType],
        "done": request.query_params.get("done", ""),
    }
    return page(request, settings, "broker_deals.html", lang, context)


@router.post("/broker/deals/{deal_id}/stage", response_class=HTMLResponse)
async def move(
    deal_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    def act(broker: BrokerRow, fields: dict[str, str]) -> str:
        require(Actor.of(admin=False, broker=broker), Action.work_deal)
        ended = engine.change_stage(
            deal_id,
            to=fields.get("to", ""),
            actor=f"broker:{broker.ref}",
            broker_id=broker.id,
            note=fields.get("note") or None,
            reason=fields.get("reason") or None,
            reroute=False,
        )
        if ended:
            request.app.state.worker.submit("unrouted")
        return f"/broker/deals?done=moved#deal-{deal_id}"

    return await _act(request, engine, settings, act)


def _own_deal(session: Any, broker: BrokerRow, deal_id: int) -> Any:
    row = deals_repo.deal(session, deal_id)
    if row is None or row.broker_id != broker.id:
        raise NotFoundError(f"no deal {deal_id} among your deals")
    return row


@router.post("/broker/deals/{deal_id}/note", response_class=HTMLResponse)
async def note(
    deal_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    def act(broker: BrokerRow, fields: dict[str, str]) -> str:
        require(Actor.of(admin=False, broker=broker), Action.work_deal)
        text = (fields.get("note") or "").strip()
        if not text or len(text) > 4000:
            raise InvalidInputError("note: write 1 to 4000 characters")
        with engine.sessions() as session:
            deal_rules.add_note(
                session,
                _own_deal(session, broker, deal_id),
                actor=f"broker:{broker.ref}",
                note=text,
            )
            session.commit()
        return f"/broker/deals?done=noted#deal-{deal_id}"

    return await _act(request, engine, settings, act)


@router.post("/broker/deals/{deal_id}/due", response_class=HTMLResponse)
async def due(
    deal_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    def act(broker: BrokerRow, fields: dict[str, str]) -> str:
        require(Actor.of(admin=False, broker=broker), Action.work_deal)
        raw = (fields.get("due_on") or "").strip()
        try:
            when = date.fromisoformat(raw) if raw else None
        except ValueError as exc:
            raise InvalidInputError(f"due_on: {raw!r} is not a date (YYYY-MM-DD)") from exc
        with engine.sessions() as session:
            row = _own_deal(session, broker, deal_id)
            deal_rules.set_due(session, row, due_on=when, actor=f"broker:{broker.ref}")
            session.commit()
        return f"/broker/deals?done=due#deal-{deal_id}"

    return await _act(request, engine, settings, act)


@router.post("/broker/deals/{deal_id}/contract", response_class=HTMLResponse)
async def contract(
    deal_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Record (or correct) an agreed deal's contract registration (``matcher.market``)."""

    def act(broker: BrokerRow, fields: dict[str, str]) -> str:
        require(Actor.of(admin=False, broker=broker), Action.work_deal)
        parties = [p.strip() for p in re.split(r"[;；\n]+", fields.get("parties", "")) if p.strip()]
        raw = {
            "type": fields.get("type", ""),
            "value": fields.get("value", "").replace(",", "").strip() or None,
            "currency": fields.get("currency", "").strip().upper(),
            "signed_on": fields.get("signed_on", "").strip(),
            "parties": parties,
        }
        with engine.sessions() as session:
            row = _own_deal(session, broker, deal_id)
            market.record_contract(session, row, raw, actor=f"broker:{broker.ref}")
            session.commit()
        return f"/broker/deals?done=contract#deal-{deal_id}"

    return await _act(request, engine, settings, act)


# -- search ------------------------------------------------------------------------------
@router.get("/broker/search", response_class=HTMLResponse)
def search(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Free-text search of the catalogue with the API's filters (field, TRL, region)."""
    lang, _ = choose_language(request)
    broker = signed_in(request, engine, settings)
    if broker is None:
        return _to_login(lang)
    query = request.query_params
    text = (query.get("q") or "").strip()[:2000]
    target = "needs" if query.get("target") == "needs" else "technologies"
    results: list[Any] = []
    error = ""
    if text:
        trl = query.get("trl_min") or ""
        try:
            require(Actor.of(admin=False, broker=broker), Action.search)
            results = engine.match_text(
                text,
                target=target,
                domains=[d for d in query.getlist("domain") if d],
                min_trl=int(trl) if trl.isdigit() else None,
                region=query.get("region") or None,
                top=20,
                lang=lang,
            )
        except (InvalidInputError, PermissionDeniedError) as exc:
            error = str(exc)
    context = {
        "page_title": t(lang, "broker.search"),
        "broker": broker,
        "q": text,
        "target": target,
        "filters": {k: query.get(k, "") for k in ("domain", "trl_min", "region")},
        "results": results,
        "error": error,
    }
    return page(request, settings, "broker_search.html", lang, context, 422 if error else 200)
