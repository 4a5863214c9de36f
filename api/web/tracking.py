"""The private tracking page: the status of one submission, and nothing else."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ApiSettingsDep, EngineDep
from api.web.csrf import csrf_token_for
from api.web.i18n import t
from api.web.pages import choose_language, error_page, render
from matcher.store.repo import tracking

router = APIRouter(include_in_schema=False)

STEPS = ("received", "matched", "claimed", "negotiating", "agreed")


def _date(value: datetime | None, lang: str) -> str:
    if value is None:
        return ""
    if lang == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {value.strftime('%B')} {value.year}"


def not_found(request: Request, lang: str) -> Response:
    """The page for a tracking link that leads nowhere (404)."""
    title, message = t(lang, "notfound.title"), t(lang, "notfound.track")
    return error_page(request, lang, status_code=404, title=title, message=message, back=None)


@router.get("/track/{token}", response_class=HTMLResponse)
def track(token: str, request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """The status of one submission, and nothing else."""
    lang, remember = choose_language(request)
    with engine.sessions() as session:
        found = tracking.find_tracked(session, token=token)
    if found is None:
        return not_found(request, lang)
    status = found.status
    steps = [*STEPS[:-1], status] if status in ("closed", "archived") else list(STEPS)
    if status == "unrouted":  # matched, but waiting for a broker who can take it
        steps[steps.index("matched")] = "unrouted"
    current = steps.index(status)
    return render(
        request,
        "track.html",
        lang,
        {
            "page_title": t(lang, "track.page_title"),
            "kind": found.side.singular,
            "title": found.title,
            "submitted": _date(found.submitted, lang),
            "submitted_iso": found.submitted.date().isoformat() if found.submitted else "",
            "status": status,
            "count": found.count,
            "reason": (found.reason or {}).get(lang) or (found.reason or {}).get("en", ""),
            "broker": found.broker,
            "token": token,
            "changeable": status not in ("archived", "closed", "agreed"),
            "notice": "track.saved"
            if request.query_params.get("saved")
            else "track.withdrawn"
            if request.query_params.get("withdrawn")
            else "",
            "steps": [
                {"key": key, "state": "done" if i < current else "current" if i == current else ""}
                for i, key in enumerate(steps)
            ],
        },
        remember_lang=remember,
        csrf=csrf_token_for(request, settings),
    )
