"""Technologies in the API: create, partial update, the public view and the match summary."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Contact, DomainConfidence, DomainsInferred, Name
from matcher import limits
from matcher.domain import (
    TRL,
    Budget,
    Code,
    CpcClass,
    Currency,
    Description,
    IPStatus,
    Keyword,
    Language,
    Licensing,
    LicensingTerms,
    PatentNo,
    Ref,
    TechnologyIn,
    Title,
)


class TechnologyCreate(TechnologyIn):
    """A new technology: the import fields of data/FORMATS.md; ``id`` only from an admin."""

    id: Ref | None = Field(  # type: ignore[assignment]
        default=None,
        description="administrators only, to choose the reference; brokers leave it out "
        "(a broker's id is refused with 422) and every record without one gets a fresh "
        "reference, returned as ref",
    )


class TechnologyUpdate(BaseModel):
    """A partial update of a technology; the merged record is validated as a whole."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title | None = None
    description: Description | None = None
    owner: Name | None = None
    domains: list[Code] | None = Field(default=None, max_length=limits.MAX_DOMAINS)
    trl: TRL | None = None
    region: Code | None = None
    ip_status: IPStatus | None = None
    patents: list[PatentNo] | None = Field(default=None, max_length=limits.MAX_PATENTS)
    cpc: list[CpcClass] | None = Field(default=None, max_length=limits.MAX_CPC)
    keywords: list[Keyword] | None = Field(default=None, max_length=limits.MAX_KEYWORDS)
    language: Language | None = None
    licensing: Licensing | None = None
    contact: Contact | None = None
    confidential: bool | None = None
    licensing_terms: LicensingTerms | None = None
    asking_min: Budget | None = None
    asking_max: Budget | None = None
    asking_currency: Currency | None = None


class TechnologyPublic(BaseModel):
    """A technology as the API shows it (never its content or tracking hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ref: str
    title: str
    description: str
    owner: str | None  # None in a teaser (before the reader may see the parties)
    domains: list[str]
    domains_inferred: DomainsInferred
    domain_confidence: DomainConfidence
    trl: int
    region: str
    ip_status: str
    patents: list[str]
    cpc: list[str]
    keywords: list[str]
    language: str
    licensing: str | None
    contact: str | None = None  # None in a teaser, like the owner
    confidential: bool
    licensing_terms: str | None = None
    asking_min: float | None = None
    asking_max: float | None = None
    asking_currency: str | None = None
    status: str
    created_at: datetime
    updated_at: datetime


class TechnologySummary(BaseModel):
    """The short form of a technology shown next to a match."""

    model_config = ConfigDict(from_attributes=True)

    kind: Literal["technology"] = "technology"
    id: int
    ref: str
    title: str
    owner: str | None  # None in a teaser (before the reader may see the parties)
    domains: list[str]
    domains_inferred: DomainsInferred
    domain_confidence: DomainConfidence
    trl: int
    region: str
    confidential: bool
