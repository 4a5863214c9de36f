"""FastAPI dependencies as Annotated aliases: the engine, a DB session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from api.config import ApiSettings
from api.web.i18n import normalise
from matcher.engine import Engine
from matcher.limits import MAX_ID
from matcher.permissions import Action, Actor, require
from matcher.phrases import DEFAULT_LANGUAGE, LANGUAGES
from matcher.store import repo
from matcher.store.models import BrokerRow


def get_engine(request: Request) -> Engine:
    """The engine created at start-up."""
    return request.app.state.engine


def get_api_settings_dep(request: Request) -> ApiSettings:
    """The service settings the app was created with."""
    return request.app.state.api_settings


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A database session for one request, committed by the handler."""
    with engine.sessions() as session:
        yield session


def preferred_language(accept_language: str) -> str | None:
    """The supported language (``en``/``zh``) a reader prefers most in an Accept-Language header."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        base = normalise(tag)
        if base is not None and weight > 0:
            ranked.append((-weight, position, base))
    return min(ranked)[2] if ranked else None


def reader_language(
    request: Request,
    lang: Annotated[
        str | None,
        Query(
            description="language of explanations: en or zh (default: Accept-Language, else en)",
            json_schema_extra={"enum": list(LANGUAGES)},
        ),
    ] = None,
) -> str:
    """The language explanations are written in: ``lang``, else Accept-Language, else English."""
    if lang is not None:
        if normalise(lang) is None:
            raise HTTPException(
                422,
                f"lang: unsupported language {lang!r}; use one of {', '.join(LANGUAGES)}",
            )
        return normalise(lang) or DEFAULT_LANGUAGE
    return preferred_language(request.headers.get("accept-language", "")) or DEFAULT_LANGUAGE


def _key_in_range(key: str) -> str:
    # The store reads a key of digits as an id: past 64 bits no row has it, and the database
    # driver would fail on it; digits other than 0–9 (²) are not ids either.
    if key.isdigit() and (not key.isascii() or int(key) > MAX_ID):
        raise ValueError(f"an id is a number from 1 to {MAX_ID}")
    return key


# Path and query parameters of ids and pages: 64-bit at most, as the database stores them.
RecordId = Annotated[int, Path(ge=1, le=MAX_ID, description="numeric id")]
RecordKey = Annotated[
    str,
    Path(max_length=64, description="numeric id or reference, e.g. 17, T-0001 or B-01"),
    AfterValidator(_key_in_range),
]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="records to skip")]


EngineDep = Annotated[Engine, Depends(get_engine)]
ReaderLangDep = Annotated[str, Depends(reader_language)]
SessionDep = Annotated[Session, Depends(get_session)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings_dep)]
_bearer = HTTPBearer(auto_error=False)


@dataclass
class Caller:
    """Who is calling: an admin, or a broker (with their row)."""

    role: str
    broker: BrokerRow | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """Name recorded in audit trails."""
        return "admin" if self.broker is None else f"broker:{self.broker.ref}"

    @property
    def acting(self) -> Actor:
        """Who acts, as the permission rules see it (a broker whose certificate expired is
        a lapsed broker)."""
        return Actor.of(admin=self.is_admin, broker=self.broker)

    @property
    def viewer(self) -> repo.Viewer:
        """Who reads, as the store's confidentiality rule needs it."""
        return repo.Viewer(
            admin=self.is_admin, broker_id=None if self.broker is None else self.broker.id
        )


def get_caller(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the bearer token; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    row = repo.find_token(session, credentials.credentials)
    if row is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    broker = repo.get_by_ref_or_id(session, BrokerRow, row.broker_id) if row.broker_id else None
    return Caller(role=row.role, broker=broker)


def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """Only administrators pass."""
    if not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "administrators only")
    return caller


def require_broker(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """Only brokers pass (suspended brokers are refused; expired ones may still work deals)."""
    if caller.broker is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint is for brokers")
    if caller.broker.suspended:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your broker account is suspended")
    return caller


def require_staff(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """Admins and brokers in good standing; the public only uses the forms."""
    if caller.broker is not None and caller.broker.suspended:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your broker account is suspended")
    if not caller.is_admin and caller.broker is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "administrators and brokers only")
    # the catalogue (read, search, write) is for brokers whose certificate is valid today
    require(caller.acting, Action.read_record)
    return caller


def certificate_valid(broker: BrokerRow, today: date | None = None) -> bool:
    """Whether a broker's certificate is valid today."""
    return not broker.suspended and broker.valid_until >= (today or date.today())


CallerDep = Annotated[Caller, Depends(get_caller)]
AdminDep = Annotated[Caller, Depends(require_admin)]
BrokerDep = Annotated[Caller, Depends(require_broker)]
StaffDep = Annotated[Caller, Depends(require_staff)]
