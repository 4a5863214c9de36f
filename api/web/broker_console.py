"""The broker console (``/broker``): the inbox, claims, verdicts, the deal board and search.

A certified broker signs in with the token an operator issued (``matcher token issue``); it is
exchanged for a signed, HttpOnly session cookie naming the token, which is checked against the
store on every request (a revoked token or a suspended broker is signed out at once). Every
form carries the CSRF token. Pages are server-rendered in English or Chinese and need no
JavaScript. The same rules as the JSON API apply (``matcher.permissions``, ``matcher.deal``):
an engine error is shown with the status the API would answer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep
from api.routes.brokers import routed_view
from api.routes.deals import deal_view
from api.web.csrf import CSRF_FIELD, csrf_ok, csrf_token_for
from api.web.i18n import t
from api.web.pages import choose_language, error_page, render, secure
from matcher import deal as deal_rules
from matcher.engine import Engine
from matcher.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from matcher.permissions import Action, Actor, require
from matcher.store.models import ApiTokenRow, BrokerRow
from matcher.store.repo import deals as deals_repo
from matcher.store.repo.tokens import find_token

router = APIRouter(include_in_schema=False)
SESSION_COOKIE = "tm_broker"
SESSION_MAX_AGE_S = 12 * 3600
_SALT = "techmatch-broker-session"
# The engine's errors as the statuses the JSON API answers with.
STATUS = {
    NotFoundError: 404,
    PermissionDeniedError: 403,
    ConflictError: 409,
    InvalidInputError: 422,
}


def _serializer(settings: ApiSettings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def signed_in(request: Request, engine: Engine, settings: ApiSettings) -> BrokerRow | None:
    """The broker of the session cookie, while their token is live and they are not suspended."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        data = _serializer(settings).loads(value, max_age=SESSION_MAX_AGE_S)
    except BadSignature:
        return None
    with engine.sessions() as session:
        token = session.get(ApiTokenRow, data.get("t") if isinstance(data, dict) else None)
        if token is None or token.revoked or token.role != "broker" or token.broker_id is None:
            return None
        broker = session.get(BrokerRow, token.broker_id)
        if broker is None or broker.suspended:
            return None
        session.expunge(broker)
        return broker


def _to_login(lang: str) -> Response:
    return RedirectResponse(f"/broker/login?lang={lang}", status_code=303)


def _page(
    request: Request,
    settings: ApiSettings,
    template: str,
    lang: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    csrf = csrf_token_for(request, settings)
    return render(request, template, lang, context, status_code=status_code, csrf=csrf)


async def _form(request: Request, settings: ApiSettings) -> dict[str, str] | None:
    """The posted form's fields, or None when its CSRF token is missing or wrong."""
    data = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    return fields if csrf_ok(request, settings, fields.get(CSRF_FIELD)) else None


def _failed(request: Request, lang: str, exc: Exception, back: str) -> HTMLResponse:
    code = next((c for kind, c in STATUS.items() if isinstance(exc, kind)), 400)
    title = t(lang, "broker.failed")
    return error_page(request, lang, status_code=code, title=title, message=str(exc), back=back)


# -- signing in ------------------------------------------------------------------------
@router.get("/broker/login", response_class=HTMLResponse)
def login_form(request: Request, settings: ApiSettingsDep) -> Response:
    lang, _ = choose_language(request)
    return _page(
        request, settings, "broker_login.html", lang, {"page_title": t(lang, "broker.login")}
    )


@router.post("/broker/login", response_class=HTMLResponse)
async def login(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Exchange a broker's API token for a session cookie."""
    lang, _ = choose_language(request)
    fields = await _form(request, settings)
    if fields is None:
        return error_page(
            request,
            lang,
            status_code=400,
            title=t(lang, "csrf.title"),
            message=t(lang, "csrf.message"),
            back=f"/broker/login?lang={lang}",
        )
    with engine.sessions() as session:
        token = find_token(session, fields.get("token", "").strip())
        broker = session.get(BrokerRow, token.broker_id) if token and token.broker_id else None
        token_id = token.id if token is not None else None
    if token_id is None or broker is None or broker.suspended:
        context = {"page_title": t(lang, "broker.login"), "error": t(lang, "broker.bad_token")}
        return _page(request, settings, "broker_login.html", lang, context, 401)
    response = RedirectResponse(f"/broker?lang={lang}", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(settings).dumps({"t": token_id}),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.post("/broker/logout", response_class=HTMLResponse)
async def logout(request: Request, settings: ApiSettingsDep) -> Response:
    lang, _ = choose_language(request)
    if await _form(request, settings) is None:
        return _to_login(lang)
    response = _to_login(lang)
    response.delete_cookie(SESSION_COOKIE)
    return response


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
    return _page(request, settings, "broker_inbox.html", lang, context)


async def _act(request: Request, engine: Engine, settings: ApiSettings, act: Any) -> Response:
    """Run one console action for the signed-in broker (CSRF checked), then back to ``done``."""
    lang, _ = choose_language(request)
    broker = signed_in(request, engine, settings)
    if broker is None:
        return _to_login(lang)
    fields = await _form(request, settings)
    back = request.headers.get("referer") or f"/broker?lang={lang}"
    if fields is None:
        title, message = t(lang, "csrf.title"), t(lang, "csrf.message")
        return error_page(request, lang, status_code=400, title=title, message=message, back=back)
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
        "done": request.query_params.get("done", ""),
    }
    return _page(request, settings, "broker_deals.html", lang, context)


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


def _own_deal(engine: Engine, session: Any, broker: BrokerRow, deal_id: int) -> Any:
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
                _own_deal(engine, session, broker, deal_id),
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
            row = _own_deal(engine, session, broker, deal_id)
            deal_rules.set_due(session, row, due_on=when, actor=f"broker:{broker.ref}")
            session.commit()
        return f"/broker/deals?done=due#deal-{deal_id}"

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
    return _page(request, settings, "broker_search.html", lang, context, 422 if error else 200)
