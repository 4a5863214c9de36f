"""Signing in to a console (the broker's ``/broker``, the operator's ``/admin``) with an API token.

The token a person pastes is exchanged for a signed, HttpOnly, SameSite=Strict session cookie
that names the token (never the token itself). Every request checks the token against the
store again, so a revoked token (or, for a broker, a suspension) signs the person out at once.
The CSRF token of the forms and the posted-form reader are here too, so that both consoles
check them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.config import ApiSettings
from api.web.csrf import CSRF_FIELD, csrf_ok, csrf_token_for
from api.web.i18n import t
from api.web.pages import error_page, render, secure
from matcher.engine import Engine
from matcher.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from matcher.store.models import ApiTokenRow
from matcher.store.repo.tokens import find_token

SESSION_MAX_AGE_S = 12 * 3600
# The engine's errors as the statuses the JSON API answers with.
STATUS = {
    NotFoundError: 404,
    PermissionDeniedError: 403,
    ConflictError: 409,
    InvalidInputError: 422,
}
ACTION_ERRORS = (NotFoundError, PermissionDeniedError, ConflictError, InvalidInputError)


@dataclass(frozen=True)
class SignedIn:
    """The live token of a console session (detached from the store)."""

    token_id: int
    role: str
    broker_id: int | None


@dataclass(frozen=True)
class Console:
    """One console's sign-in: the role its tokens must have, its cookie, its pages."""

    role: str  # "broker" | "admin"
    cookie: str
    salt: str
    home: str  # the console's first page, e.g. /broker

    def _serializer(self, settings: ApiSettings) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(settings.secret_key, salt=self.salt)

    @property
    def login_path(self) -> str:
        return f"{self.home}/login"

    def to_login(self, lang: str) -> Response:
        """A redirect to the sign-in page."""
        return RedirectResponse(f"{self.login_path}?lang={lang}", status_code=303)

    def session_token(
        self, request: Request, engine: Engine, settings: ApiSettings
    ) -> SignedIn | None:
        """The session cookie's token while it is live and of this console's role."""
        value = request.cookies.get(self.cookie)
        if not value:
            return None
        try:
            data = self._serializer(settings).loads(value, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        token_id = data.get("t") if isinstance(data, dict) else None
        if not isinstance(token_id, int):
            return None
        with engine.sessions() as session:
            token = session.get(ApiTokenRow, token_id)
            if token is None or token.revoked or token.role != self.role:
                return None
            return SignedIn(token.id, token.role, token.broker_id)

    def check_token(self, engine: Engine, raw: str) -> SignedIn | None:
        """The live token a person pasted, when it is of this console's role."""
        with engine.sessions() as session:
            token = find_token(session, raw.strip())
            if token is None or token.role != self.role:
                return None
            return SignedIn(token.id, token.role, token.broker_id)

    def start(
        self, request: Request, settings: ApiSettings, token: SignedIn, where: str
    ) -> Response:
        """Sign in: the session cookie, and a redirect to ``where``."""
        response = RedirectResponse(where, status_code=303)
        response.set_cookie(
            self.cookie,
            self._serializer(settings).dumps({"t": token.token_id}),
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=secure(request),
        )
        return response

    def end(self, lang: str) -> Response:
        """Sign out: the cookie deleted, back to the sign-in page."""
        response = self.to_login(lang)
        response.delete_cookie(self.cookie)
        return response


def page(
    request: Request,
    settings: ApiSettings,
    template: str,
    lang: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    """A console page with the visitor's CSRF token for its forms."""
    csrf = csrf_token_for(request, settings)
    return render(request, template, lang, context, status_code=status_code, csrf=csrf)


async def posted_form(request: Request, settings: ApiSettings) -> dict[str, str] | None:
    """The posted form's fields, or None when its CSRF token is missing or wrong."""
    data = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    return fields if csrf_ok(request, settings, fields.get(CSRF_FIELD)) else None


def csrf_failed(request: Request, lang: str, back: str) -> HTMLResponse:
    """The page of a form sent without its CSRF token (400)."""
    title, message = t(lang, "csrf.title"), t(lang, "csrf.message")
    return error_page(request, lang, status_code=400, title=title, message=message, back=back)


def failed(request: Request, lang: str, exc: Exception, back: str, *, title: str) -> HTMLResponse:
    """An engine error as a page, with the status the JSON API would answer."""
    code = next((c for kind, c in STATUS.items() if isinstance(exc, kind)), 400)
    return error_page(request, lang, status_code=code, title=title, message=str(exc), back=back)
