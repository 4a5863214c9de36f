"""Errors as HTTP answers: one table from the engine's error kinds to statuses.

Every error the engine raises on purpose is a ``matcher.errors.MatcherError``; its kind picks
the status here (the most specific class in ``STATUS`` wins) and its message is the ``detail``
a caller can act on. A part that cannot serve (encoder, index, ranker) answers 503, never 500;
anything unexpected answers a bare 500 without internals, and is logged.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api import openapi
from matcher.catalog import ImportRejectedError
from matcher.errors import (
    ConflictError,
    InvalidInputError,
    MatcherError,
    NotFoundError,
    PermissionDeniedError,
    RecordInvalidError,
    UnavailableError,
)
from matcher.ingest import EMPTY, ImportFormatError, blank_text

log = logging.getLogger(__name__)

# Error kind → HTTP status. A subclass not listed answers its nearest listed ancestor's status.
STATUS: dict[type[MatcherError], int] = {
    MatcherError: 500,
    InvalidInputError: 422,
    ImportFormatError: 400,  # the file cannot be read at all: a bad request, not a bad record
    NotFoundError: 404,
    ConflictError: 409,
    PermissionDeniedError: 403,
    UnavailableError: 503,
}
ECHO_CHARS, ECHO_ITEMS = 200, 20  # how much of a rejected input a 422 repeats
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
RETRY_AFTER_S = 30  # what a 503 suggests: encoders load and indexes rebuild in about that


def status_of(exc: MatcherError) -> int:
    """The HTTP status of an engine error: its most specific kind listed in ``STATUS``."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 500


def body_of(exc: MatcherError) -> dict[str, Any]:
    """``{"detail": message}``, with the structured problems of invalid records and imports."""
    if isinstance(exc, RecordInvalidError):
        return {"detail": str(exc), "errors": [e.as_dict() for e in exc.errors]}
    if isinstance(exc, ImportRejectedError):
        return {
            "detail": str(exc).splitlines()[0],
            "errors": [{"line": e.line, "message": e.message} for e in exc.errors],
        }
    return {"detail": str(exc)}


async def matcher_error(_: Request, exc: Exception) -> JSONResponse:
    """An engine error as its status and message."""
    assert isinstance(exc, MatcherError)
    status = status_of(exc)
    headers = None
    if status == 503:
        log.warning("unavailable: %s", exc)
        headers = {"Retry-After": str(RETRY_AFTER_S)}
    elif status >= 500:
        log.error("engine error: %s", exc, exc_info=exc)
    return JSONResponse(body_of(exc), status_code=status, headers=headers)


def _request_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(_echo(p)) for p in err["loc"] if p not in ("body", "query", "path"))
        msg = EMPTY if blank_text(err["type"], err.get("ctx")) else err["msg"]
        parts.append(f"{where or 'request'}: {msg}")
    return "; ".join(parts)


def _echo(value: Any) -> Any:
    """A rejected input as JSON can carry it back: numbers that are not finite as text, strings
    cut short and without lone surrogates, long lists shortened (the input may be what made
    the request invalid: ``NaN``, ``"\\ud800"``, a megabyte)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        text = value.encode("utf-8", "replace").decode("utf-8")
        return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"
    if isinstance(value, list | tuple):
        return [_echo(v) for v in value[:ECHO_ITEMS]] + (["…"] if len(value) > ECHO_ITEMS else [])
    if isinstance(value, dict):
        return {_echo(str(k)): _echo(v) for k, v in list(value.items())[:ECHO_ITEMS]}
    return value


def _echoed(error: Any) -> Any:
    """One of pydantic's errors, its input and location made safe to answer with."""
    if not isinstance(error, dict):
        return error
    safe = {**error, "loc": [_echo(part) for part in error.get("loc", ())]}
    if "input" in error:
        safe["input"] = _echo(error["input"])
    return safe


async def request_invalid(_: Request, exc: Exception) -> JSONResponse:
    """A request FastAPI could not read into its parameters: 422 with pydantic's errors."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        {
            "detail": _request_message(exc),
            "errors": jsonable_encoder(
                [_echoed(error) for error in exc.errors()], custom_encoder={Exception: str}
            ),
        },
        status_code=422,
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """An ``HTTPException`` a route raised, as JSON (a 405 lists every method of the path)."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method served at the request's path: as the API's document lists them, else
    every route that matches (Starlette's own 405 names only the first route's, and one path
    often has several: GET and POST, PATCH and DELETE)."""
    documented = openapi.methods_at(request.app, request.url.path)
    if documented is not None:
        return documented
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


async def unexpected(_: Request, exc: Exception) -> JSONResponse:
    """Anything else: logged with its traceback, answered without internals."""
    log.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def register(app: FastAPI) -> None:
    """Install the handlers on an app."""
    app.add_exception_handler(MatcherError, matcher_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
