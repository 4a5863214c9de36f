"""Needs in the API: create, partial update, the public view and the match summary."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import Contact, Currency, DomainConfidence, DomainsInferred, Name
from matcher import limits
from matcher.domain import (
    TRL,
    Budget,
    Code,
    Deadline,
    Description,
    Language,
    NeedIn,
    Ref,
    RegionScope,
    Title,
)


class NeedCreate(NeedIn):
    """A new need: the import fields of data/FORMATS.md; ``id`` only from an admin."""

    id: Ref | None = Field(  # type: ignore[assignment]
        default=None,
        description="administrators only, to choose the reference; brokers leave it out "
        "(a broker's id is refused with 422) and every record without one gets a fresh "
        "reference, returned as ref",
    )

    @model_validator(mode="after")
    def _windows(self) -> NeedCreate:
        """Cross-field checks run in validate_record, which reports them as plain messages."""
        return self


class NeedUpdate(BaseModel):
    """A partial update of a need; the merged record is validated as a whole."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    enterprise: Name | None = None
    title: Title | None = None
    description: Description | None = None
    domains: list[Code] | None = Field(default=None, max_length=limits.MAX_DOMAINS)
    trl_min: TRL | None = None
    trl_max: TRL | None = None
    trl_hard: bool | None = None
    region_scope: RegionScope | None = None
    home_region: Code | None = None
    region_hard: bool | None = None
    budget_min: Budget | None = None
    budget_max: Budget | None = None
    currency: Currency | None = None
    deadline: Deadline | None = None
    contact: Contact | None = None
    language: Language | None = None
    confidential: bool | None = None


class NeedPublic(BaseModel):
    """A need as the API shows it (never its content or tracking hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ref: str
    enterprise: str | None  # None in a teaser (before the reader may see the parties)
    title: str
    description: str
    domains: list[str]
    domains_inferred: DomainsInferred
    domain_confidence: DomainConfidence
    trl_min: int
    trl_max: int | None
    trl_hard: bool
    region_scope: str
    home_region: str
    region_hard: bool
    budget_min: float | None
    budget_max: float | None
    currency: str
    deadline: date | None
    contact: str | None
    language: str
    confidential: bool
    status: str
    created_at: datetime
    updated_at: datetime


class NeedSummary(BaseModel):
    """The short form of a need shown next to a match."""

    model_config = ConfigDict(from_attributes=True)

    kind: Literal["need"] = "need"
    id: int
    ref: str
    title: str
    enterprise: str | None  # None in a teaser (before the reader may see the parties)
    domains: list[str]
    domains_inferred: DomainsInferred
    domain_confidence: DomainConfidence
    trl_min: int
    trl_max: int | None
    home_region: str
    region_scope: str
    confidential: bool
