"""The engine's errors: one base class, a few kinds a caller can act on.

Every error the engine raises on purpose is a ``MatcherError``. Its kind (the class it derives
from below) says what went wrong for the caller, so the API maps kinds to HTTP statuses with one
table (``api/errors.py``) and the CLI prints the message. Field errors keep pydantic's structure
(type, location, context) so that forms translate them without reading message text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class MatcherError(Exception):
    """Base of every error the engine raises on purpose; ``str(e)`` is a message for people."""


class InvalidInputError(MatcherError, ValueError):
    """Input the engine cannot accept as it is (fix it and try again)."""


class NotFoundError(MatcherError, LookupError):
    """A technology, need, broker, deal or inbox item that does not exist (for this caller)."""


class ConflictError(MatcherError):
    """The request clashes with the current state (already exists, already claimed, …)."""


class PermissionDeniedError(MatcherError):
    """The caller may not do this (role, suspended or expired certificate, not theirs)."""


class UnavailableError(MatcherError, RuntimeError):
    """A part the engine needs (encoder, index, ranker, database) cannot serve right now."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, as pydantic reports it.

    Attributes:
        type: pydantic's error type (``string_too_short``, ``missing``, …) or one of the
            engine's own (``unknown_domain``, ``unknown_region``, ``trl_window``, …).
        loc: where the value sits, e.g. ``("domains", 0)``; empty for the whole record.
        msg: pydantic's (English) message, for logs and the JSON API.
        ctx: the values the message is built from (``min_length``, ``code``, …).
    """

    type: str
    loc: tuple[str | int, ...]
    msg: str
    ctx: dict[str, Any] = field(default_factory=dict)

    @property
    def field(self) -> str:
        """The top-level field name (``""`` for the whole record)."""
        return str(self.loc[0]) if self.loc else ""

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.loc)
        return f"{where}: {self.msg}" if where else self.msg

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the shape of FastAPI's own 422 items)."""
        return {"type": self.type, "loc": list(self.loc), "msg": self.msg, "ctx": self.ctx}


def field_errors_of(errors: Sequence[Any]) -> list[FieldError]:
    """Field errors from pydantic's ``ValidationError.errors()`` (structure kept, not parsed)."""
    out = []
    for error in errors:
        ctx = {k: v for k, v in (error.get("ctx") or {}).items() if _plain(v)}
        out.append(
            FieldError(
                type=str(error.get("type", "value_error")),
                loc=tuple(error.get("loc", ())),
                msg=str(error.get("msg", "")),
                ctx=ctx,
            )
        )
    return out


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


class RecordInvalidError(InvalidInputError):
    """A record that failed validation; ``errors`` lists each field's problem."""

    def __init__(self, errors: Sequence[FieldError], *, what: str = "record") -> None:
        self.errors = list(errors)
        detail = "; ".join(str(e) for e in self.errors) or "invalid"
        super().__init__(f"invalid {what}: {detail}")
