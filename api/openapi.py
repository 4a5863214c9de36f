"""The OpenAPI document as the service answers: every error an operation can give, with its body.

FastAPI documents the success answer of each operation and a 422 in its own error shape. The
service answers errors in one shape of its own (``Problem``: a ``detail`` that says what to fix,
and for invalid input the structured ``errors``), from the engine's error table
(``api.errors``), the request guard (413, 414, NUL in a URL), the per-token rate limit (429) and
authentication (401, 403). This module rewrites the generated document once, so that each
operation declares the statuses it can answer:

- every operation: 414 (the URL limit), 422 (invalid parameters or body);
- an operation behind a bearer token: 401 (no or a bad token), 403 (the role or the permission
  table refuses), 429 (the token's rate);
- an operation with a path parameter or a filter naming a record: 404 (no such record, or
  one the caller may not see);
- an operation with a body: 400 (a body that is not JSON or not a form), 413 (the body limit);
- an operation that writes (POST, PUT, PATCH, DELETE): 409 (a taken reference, a deal in
  another stage, an item already decided or claimed);
- an operation that writes or embeds text: 503 with ``Retry-After`` (the encoder, an index or
  the ranker cannot serve now).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

PROBLEM = "Problem"
_REF = {"$ref": f"#/components/schemas/{PROBLEM}"}
_WRITES = {"post", "put", "patch", "delete"}
_RECORD_FILTERS = {"broker", "need", "technology"}  # query parameters that name a record
_EMBEDS = ("/search", "/matches", "/match", "/suggest")  # reads that run the encoder or indexes

DESCRIPTIONS = {
    400: "The body cannot be read: not JSON, a broken form, or a file of an unknown type.",
    401: "No bearer token, or one that is unknown or revoked.",
    403: "The caller's role, certificate or the permission table does not allow this.",
    404: "No such record, or one the caller may not see.",
    409: "Conflicts with the stored state (a taken reference, a deal in another stage, an "
    "item already decided or claimed).",
    413: "The request body is larger than the service accepts.",
    414: "The URL is longer than the service accepts; send long input in a JSON body.",
    422: "Invalid input: ``detail`` says what to fix, ``errors`` lists each problem.",
    429: "Too many requests with this token; ``Retry-After`` says when to try again.",
    503: "A part of the engine (encoder, index, ranker) cannot serve now; try again later.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}},
}


class Problem(BaseModel):
    """Every error answer: what went wrong and what to fix; for invalid input each problem."""

    detail: str = Field(description="what went wrong and what to do about it")
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="invalid input only: one entry per problem (type, loc, msg, ctx; or the "
        "line and message of an import file's row)",
    )


def statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer (see the module's docstring)."""
    found = {414, 422}
    if operation.get("security"):
        found |= {401, 403, 429}
    parameters = operation.get("parameters", ())
    if any(p.get("in") == "path" or p.get("name") in _RECORD_FILTERS for p in parameters):
        found.add(404)
    if "requestBody" in operation:
        found |= {400, 413}
    if method in _WRITES:
        found |= {409, 503}
    if any(part in path for part in _EMBEDS):
        found.add(503)
    return found


def _answer(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _REF}},
    }
    if status in _HEADERS:
        answer["headers"] = _HEADERS[status]
    return answer


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with its declared errors (built once, then cached)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components[PROBLEM] = Problem.model_json_schema()
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses(path, method, operation)):
                responses[str(status)] = _answer(status)
    app.openapi_schema = schema
    return schema


def methods_at(app: FastAPI, path: str) -> list[str] | None:
    """The methods the document lists at a request path (None when it lists none). A path of
    its own wins over a template that also matches it, as in routing: ``/needs/import`` is not
    ``/needs/{key}``."""
    matching = [(template, ops) for template, ops in _templates(app) if template.fullmatch(path)]
    own = [ops for template, ops in matching if "[^/]+" not in template.pattern]
    chosen = own or [ops for _, ops in matching]
    if not chosen:
        return None
    return sorted({method.upper() for ops in chosen for method in ops})


@cache
def _compiled(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def _templates(app: FastAPI) -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    return [(_compiled(path), ops) for path, ops in app.openapi().get("paths", {}).items()]


def install(app: FastAPI) -> None:
    """Serve ``document(app)`` at /openapi.json (and to /docs)."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
