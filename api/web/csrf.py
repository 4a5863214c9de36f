"""Signed double-submit CSRF tokens for the forms, and the signed cookie of a done submission."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.config import ApiSettings

CSRF_COOKIE = "tm_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_S = 12 * 3600
_CSRF_SALT = "techmatch-csrf"
_DONE_SALT = "techmatch-done"


def _serializer(settings: ApiSettings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=salt)


def _valid_csrf(settings: ApiSettings, token: str | None) -> bool:
    if not token:
        return False
    try:
        _serializer(settings, _CSRF_SALT).loads(token, max_age=CSRF_MAX_AGE_S)
    except BadSignature:
        return False
    return True


def csrf_token_for(request: Request, settings: ApiSettings) -> str:
    """The visitor's current CSRF token, or a new one."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and _valid_csrf(settings, current):
        return current
    return _serializer(settings, _CSRF_SALT).dumps(secrets.token_urlsafe(16))


def csrf_ok(request: Request, settings: ApiSettings, submitted: str | None) -> bool:
    """The hidden field equals the cookie and carries our signature."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie, submitted) and _valid_csrf(settings, submitted)


def sign_done(settings: ApiSettings, done: dict[str, Any]) -> str:
    """A signed cookie value for the confirmation page (reference and tracking token)."""
    return _serializer(settings, _DONE_SALT).dumps(done)


def read_done(settings: ApiSettings, value: str, *, max_age: int) -> dict[str, Any] | None:
    """The confirmation cookie's content, or None when it is missing, forged or stale."""
    try:
        done = _serializer(settings, _DONE_SALT).loads(value, max_age=max_age)
    except BadSignature:
        return None
    return done if isinstance(done, dict) else None
