"""The operator console (``/admin``): needs nobody could take and routing them again, brokers
with their workload and certificates, certify / renew / suspend / reinstate / upgrade, training
records, each broker's competency record, and reassigning an inbox item.

An operator signs in with an admin API token (exchanged for a signed session cookie checked
against the store on every request, ``api.web.console_session``). Every form carries the CSRF
token; pages are server-rendered in English or Chinese and need no JavaScript. The rules are
the engine's (``matcher.competency``, the engine's routing); an error shows the status the JSON
API would answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep
from api.web.console_session import (
    ACTION_ERRORS,
    Console,
    csrf_failed,
    failed,
    page,
    posted_form,
)
from api.web.i18n import field_error_text, t
from api.web.pages import choose_language
from api.worker import announce
from matcher.engine import Engine
from matcher.errors import RecordInvalidError
from matcher.reassign import reassign as reassign_item

router = APIRouter(include_in_schema=False)
CONSOLE = Console(role="admin", cookie="tm_admin", salt="techmatch-admin-session", home="/admin")
ACTOR = "admin"


def signed_in(request: Request, engine: Engine, settings: ApiSettings) -> bool:
    return CONSOLE.session_token(request, engine, settings) is not None


def field_errors(lang: str, exc: RecordInvalidError) -> dict[str, str]:
    """Field → its problem in the page's language (the first per field)."""
    out: dict[str, str] = {}
    for error in exc.errors:
        out.setdefault(error.field or "_", field_error_text(lang, error))
    return out


# -- signing in ------------------------------------------------------------------------
@router.get("/admin/login", response_class=HTMLResponse)
def login_form(request: Request, settings: ApiSettingsDep) -> Response:
    lang, _ = choose_language(request)
    context = {"page_title": t(lang, "op.login")}
    return page(request, settings, "operator_login.html", lang, context)


@router.post("/admin/login", response_class=HTMLResponse)
async def login(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Exchange an admin API token for a session cookie."""
    lang, _ = choose_language(request)
    fields = await posted_form(request, settings)
    if fields is None:
        return csrf_failed(request, lang, f"/admin/login?lang={lang}")
    token = CONSOLE.check_token(engine, fields.get("token", ""))
    if token is None:
        context = {"page_title": t(lang, "op.login"), "error": t(lang, "op.bad_token")}
        return page(request, settings, "operator_login.html", lang, context, 401)
    return CONSOLE.start(request, settings, token, f"/admin?lang={lang}")


@router.post("/admin/logout", response_class=HTMLResponse)
async def logout(request: Request, settings: ApiSettingsDep) -> Response:
    lang, _ = choose_language(request)
    if await posted_form(request, settings) is None:
        return CONSOLE.to_login(lang)
    return CONSOLE.end(lang)


async def act_on(
    request: Request,
    engine: Engine,
    settings: ApiSettings,
    act: Callable[[dict[str, str], str], str | Response],
) -> Response:
    """Run one console action (CSRF checked), then back to where it says."""
    lang, _ = choose_language(request)
    if not signed_in(request, engine, settings):
        return CONSOLE.to_login(lang)
    fields = await posted_form(request, settings)
    back = request.headers.get("referer") or f"/admin?lang={lang}"
    if fields is None:
        return csrf_failed(request, lang, back)
    try:
        where = act(fields, lang)
    except ACTION_ERRORS as exc:
        return failed(request, lang, exc, back, title=t(lang, "op.failed"))
    if isinstance(where, Response):
        return where
    separator = "&" if "?" in where else "?"
    path, _, anchor = where.partition("#")
    return RedirectResponse(
        f"{path}{separator}lang={lang}{'#' + anchor if anchor else ''}", status_code=303
    )


# -- needs nobody could take -----------------------------------------------------------------
@router.get("/admin", response_class=HTMLResponse)
def unrouted(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Needs no eligible broker could take, each with the reason, and routing them again."""
    lang, _ = choose_language(request)
    if not signed_in(request, engine, settings):
        return CONSOLE.to_login(lang)
    total, needs = engine.unrouted_needs(limit=200)
    items = [
        {
            "id": n.id,
            "ref": n.ref,
            "title": n.title,
            "enterprise": n.enterprise,
            "domains": list(n.domains),
            "region": n.home_region,
            "scope": n.region_scope,
            "reason": (n.routing_reason or {}).get(lang, (n.routing_reason or {}).get("en", "")),
            "since": n.updated_at.date().isoformat() if n.updated_at else "",
        }
        for n in needs
    ]
    query = request.query_params
    context = {
        "page_title": t(lang, "op.unrouted"),
        "items": items,
        "total": total,
        "done": query.get("done", ""),
        "done_n": query.get("n", ""),
    }
    return page(request, settings, "operator_unrouted.html", lang, context)


@router.post("/admin/unrouted/route", response_class=HTMLResponse)
async def route_all(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Route again every need nobody could take (and what lapsed brokers held)."""

    def act(fields: dict[str, str], lang: str) -> str:
        outcomes = engine.route_unrouted()
        announce(engine, settings, [i for o in outcomes for i in o.routed_ids])
        still = sum(1 for o in outcomes if o.state == "unrouted")
        return f"/admin?done=routed_all&n={len(outcomes) - still}"

    return await act_on(request, engine, settings, act)


@router.post("/admin/unrouted/{key}/route", response_class=HTMLResponse)
async def route_one(
    key: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Match and route one need (by reference or id) again now."""

    def act(fields: dict[str, str], lang: str) -> str:
        outcome = engine.match_and_route(key)
        announce(engine, settings, outcome.routed_ids)
        done = "still_unrouted" if outcome.state == "unrouted" else "routed"
        return f"/admin?done={done}&n={len(outcome.routed_ids)}"

    return await act_on(request, engine, settings, act)


# -- an inbox item ------------------------------------------------------------------------
@router.post("/admin/routed/{routed_id}/reassign", response_class=HTMLResponse)
async def reassign(
    routed_id: int, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Move an unclaimed inbox item to another broker in good standing with capacity."""

    def act(fields: dict[str, str], lang: str) -> str:
        with engine.sessions() as session:
            moved = reassign_item(
                session, routed_id, fields.get("broker", ""), actor=ACTOR, today=date.today()
            )
            session.commit()
            previous = moved.previous
        announce(engine, settings, [routed_id])
        return f"/admin/brokers/{previous}?done=reassigned"

    return await act_on(request, engine, settings, act)
