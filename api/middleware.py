"""What every request meets before a route, and every answer carries.

``RequestGuard`` (pure ASGI, so bodies stream through it) answers at once, without reading more
than the limit:

- 414 for a URL (path and query) longer than ``max_url_bytes``;
- 422 for a NUL character (``%00``) in the URL, which no database column may hold;
- 413 for a body larger than ``max_body_bytes`` (a bulk import upload, ``multipart/form-data``,
  may reach ``max_upload_bytes``; the import route checks the file itself);
- 422 for a JSON body holding what cannot be stored or answered: control characters or lone
  surrogates in a string, ``NaN``/``Infinity``/``1e400``, integers past 64 bits — with the
  location of each, in the shape of FastAPI's own 422.

Every answer gets ``Content-Security-Policy`` (the pages load one stylesheet from this site and
run no script), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` (a
tracking link's token never leaves in a Referer header).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import ApiSettings
from matcher.limits import json_problems

# The pages: a stylesheet from this site, forms posted back to it, no script, no frames.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# The OpenAPI consoles (/docs, /redoc; api.docs) load Swagger UI and ReDoc from this site and
# start them with an inline script; ReDoc renders in a blob: worker. Nothing from other hosts.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
MULTIPART_SLACK = 64 * 1024  # room for the multipart boundaries and headers around the file
_JSON_TYPES = ("application/json",)


class RequestGuard:
    """Size, URL and JSON hygiene limits, and security headers; see the module docstring."""

    def __init__(self, app: ASGIApp, *, settings: ApiSettings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.max_upload_bytes + MULTIPART_SLACK
        self.max_url = settings.max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send, docs=scope["path"].startswith(DOCS_PATHS))
        problem = self._url_problem(scope)
        if problem is not None:
            await _answer(send, *problem)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.max_upload if content_type == "multipart/form-data" else self.max_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, *_too_large(int(declared), limit))
            return
        if _is_json(content_type) and scope["method"] in ("POST", "PUT", "PATCH"):
            body = await _read_body(receive, limit)
            if body is None:
                await _answer(send, *_too_large(None, limit))
                return
            invalid = _json_invalid(body)
            if invalid is not None:
                await _answer(send, 422, invalid)
                return
            receive = _replay(body)
        else:
            receive = _counted(receive, limit)
        await self.app(scope, receive, send)

    def _url_problem(self, scope: Scope) -> tuple[int, dict[str, Any]] | None:
        path = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query = scope.get("query_string", b"")
        length = len(path) + len(query) + (1 if query else 0)
        if length > self.max_url:
            return 414, {
                "detail": f"the URL is {length:,} bytes long; at most {self.max_url:,} are "
                "accepted (send long input in a JSON body)"
            }
        if b"%00" in path + query or "\x00" in scope["path"]:
            return 422, {
                "detail": "the URL contains a NUL character (%00); remove it",
                "errors": [
                    {
                        "type": "control_character",
                        "loc": ["url"],
                        "msg": "contains the control character U+0000; remove it",
                        "ctx": {"char": "U+0000"},
                    }
                ],
            }
        return None


def _is_json(content_type: str) -> bool:
    # FastAPI reads a body without a content type as JSON too.
    return not content_type or content_type in _JSON_TYPES or content_type.endswith("+json")


def _too_large(size: int | None, limit: int) -> tuple[int, dict[str, Any]]:
    said = f"{size:,} bytes" if size is not None else "more than that"
    return 413, {
        "detail": f"the request body is {said}; at most {limit:,} bytes are accepted here "
        "(split a large batch, or upload it as a file to the import endpoint)"
    }


def _json_invalid(body: bytes) -> dict[str, Any] | None:
    """The 422 body for JSON that holds what cannot be stored; None when it is fine (or not
    JSON at all, which FastAPI answers itself)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    problems = list(json_problems(value, ("body",)))
    if not problems:
        return None
    where = "; ".join(f"{'.'.join(str(p) for p in e.loc[1:]) or 'body'}: {e.msg}" for e in problems)
    return {"detail": where, "errors": [e.as_dict() for e in problems]}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A receive channel that hands the app a body already read."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _counted(receive: Receive, limit: int) -> Receive:
    """A receive channel that stops a streamed body (no Content-Length) past ``limit``."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                # Raised inside the route's body parsing; the HTTP error handler answers 413.
                raise HTTPException(413, _too_large(None, limit)[1]["detail"])
        return message

    return counted


def _with_security_headers(send: Send, *, docs: bool) -> Send:
    policy = (DOCS_POLICY if docs else PAGE_POLICY).encode()

    async def sender(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v)
                for k, v in message.get("headers", [])
                if k.lower()
                not in (b"content-security-policy", b"x-content-type-options", b"referrer-policy")
            ]
            headers += [
                (b"content-security-policy", policy),
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"),
            ]
            message = {**message, "headers": headers}
        await send(message)

    return sender


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
