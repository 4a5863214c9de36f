"""Rate limits: public form submissions per client address, API requests per bearer token.

The ``limits`` package counts requests in a moving window, in the storage that
``MATCHER_API_RATE_LIMIT_STORAGE`` names: ``memory://`` holds one process's counts; when several
processes serve, they share a store such as ``redis://host:6379`` (``limits`` speaks Redis,
Memcached, MongoDB). A request past its limit answers 429 with ``Retry-After``: API requests
as JSON (``TokenRateLimit``, in front of every route), form submissions as a page in the
reader's language (``api.web.forms``). Tokens are counted by their SHA-256, never in clear.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.config import ApiSettings


@dataclass(frozen=True)
class Refusal:
    """A request past one of its limits: which one, and when to try again."""

    rate: RateLimitItem
    retry_after_s: int

    @property
    def rate_text(self) -> str:
        """The limit in words, e.g. ``5 per 1 minute``."""
        return str(self.rate)


class RateLimits:
    """The service's counters: form submissions per client address, requests per token."""

    def __init__(self, settings: ApiSettings) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage))
        self.form_rates = parse_many(settings.form_rate)
        self.token_rates = parse_many(settings.token_rate)

    def hit_form(self, client: str) -> Refusal | None:
        """Count one form submission from ``client`` (an IP address); a refusal past a limit."""
        return self._hit(self.form_rates, "form", client)

    def hit_token(self, token: str) -> Refusal | None:
        """Count one API request with ``token``; a refusal past a limit."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        return self._hit(self.token_rates, "token", digest)

    def _hit(self, rates: list[RateLimitItem], *key: str) -> Refusal | None:
        for rate in rates:
            if not self._limiter.hit(rate, *key):
                reset = self._limiter.get_window_stats(rate, *key).reset_time
                return Refusal(rate, max(1, math.ceil(reset - time.time())))
        return None


def client_address(request: Request) -> str:
    """The client's IP address as the server sees it: uvicorn takes the visitor's from
    ``X-Forwarded-For`` when the proxy is trusted (``FORWARDED_ALLOW_IPS``), else the proxy's."""
    return request.client.host if request.client else "unknown"


def bearer_token(headers: Headers) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class TokenRateLimit:
    """Pure ASGI middleware: a request with a bearer token past the token's rate answers 429."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = bearer_token(Headers(scope=scope))
            refusal = self.limits.hit_token(token) if token else None
            if refusal is not None:
                await _too_many(send, refusal)
                return
        await self.app(scope, receive, send)


async def _too_many(send: Send, refusal: Refusal) -> None:
    body = json.dumps(
        {
            "detail": f"too many requests with this token: at most {refusal.rate_text}; try "
            f"again in {refusal.retry_after_s} s"
        }
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(refusal.retry_after_s).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, settings: ApiSettings) -> None:
    """Give ``app`` its counters (``app.state.rate_limits``, read by the forms) and put the
    per-token limit in front of its routes."""
    app.state.rate_limits = RateLimits(settings)
    app.add_middleware(TokenRateLimit, limits=app.state.rate_limits)
