"""FastAPI dependencies as Annotated aliases: the engine, a DB session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import find_token
from api.config import ApiSettings
from matcher.engine import Engine
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


EngineDep = Annotated[Engine, Depends(get_engine)]
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
    row = find_token(session, credentials.credentials)
    if row is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    broker = session.get(BrokerRow, row.broker_id) if row.broker_id else None
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


def certificate_valid(broker: BrokerRow, today: date | None = None) -> bool:
    """Whether a broker's certificate is valid today."""
    return not broker.suspended and broker.valid_until >= (today or date.today())


CallerDep = Annotated[Caller, Depends(get_caller)]
AdminDep = Annotated[Caller, Depends(require_admin)]
BrokerDep = Annotated[Caller, Depends(require_broker)]
