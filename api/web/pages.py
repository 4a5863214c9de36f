"""Rendering the HTML pages: language choice, templates, cookies, the error page, static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.routing import NoMatchFound

from api.deps import preferred_language
from api.web.csrf import CSRF_COOKIE, CSRF_FIELD, CSRF_MAX_AGE_S
from api.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, normalise, t

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

LANG_COOKIE = "tm_lang"
COOKIE_YEAR_S = 365 * 24 * 3600

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def static_files() -> StaticFiles:
    """``api/web/static``, served at ``/static``."""
    return StaticFiles(directory=str(STATIC_DIR))


def mount_static(app: FastAPI) -> None:
    """Serve ``api/web/static`` at ``/static`` (no-op when a router's mount is already there)."""
    try:
        app.url_path_for("static", path="style.css")
    except NoMatchFound:
        app.mount("/static", static_files(), name="static")


def choose_language(request: Request) -> tuple[str, bool]:
    """The page language (query, cookie, Accept-Language, English) and whether to remember it."""
    asked = normalise(request.query_params.get("lang"))
    if asked:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    remembered = normalise(request.cookies.get(LANG_COOKIE))
    if remembered:
        return remembered, False
    preferred = preferred_language(request.headers.get("accept-language", ""))
    return preferred or DEFAULT_LANGUAGE, False


def secure(request: Request) -> bool:
    """Whether cookies should be marked Secure (the request came over HTTPS)."""
    return request.url.scheme == "https"


def render(
    request: Request,
    template: str,
    lang: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    remember_lang: bool = False,
    csrf: str | None = None,
) -> HTMLResponse:
    """A page in ``lang``; sets the language and CSRF cookies when asked."""
    base = {
        "lang": lang,
        "languages": LANGUAGES,
        "_": lambda key, **params: t(lang, key, **params),
        "path": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf,
    }
    response = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if remember_lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=COOKIE_YEAR_S, samesite="lax", secure=secure(request)
        )
    if csrf is not None and request.cookies.get(CSRF_COOKIE) != csrf:
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            max_age=CSRF_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=secure(request),
        )
    return response


def error_page(
    request: Request, lang: str, *, status_code: int, title: str, message: str, back: str | None
) -> HTMLResponse:
    """A small page explaining what went wrong."""
    return render(
        request,
        "error.html",
        lang,
        {"page_title": title, "title": title, "message": message, "back": back},
        status_code=status_code,
    )
