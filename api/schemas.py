"""Request and response models of the JSON API (one small family of models per entity)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from matcher.domain import (
    TRL,
    Description,
    IPStatus,
    Language,
    Licensing,
    NeedIn,
    Ref,
    RegionScope,
    TechnologyIn,
    Text,
    Title,
)

T = TypeVar("T")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=300)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Contact = Annotated[str, StringConstraints(max_length=300)]
QueryText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Page(BaseModel, Generic[T]):
    """One page of a filtered list."""

    items: list[T]
    total: int = Field(description="records matching the filters, over all pages")
    limit: int
    offset: int


# -- technologies ---------------------------------------------------------------------------
class TechnologyCreate(TechnologyIn):
    """A new technology: the import fields of data/FORMATS.md; ``id`` is generated if absent."""

    id: Ref | None = None  # type: ignore[assignment]


class TechnologyUpdate(BaseModel):
    """A partial update of a technology; the merged record is validated as a whole."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title | None = None
    description: Description | None = None
    owner: Name | None = None
    domains: list[Text] | None = None
    trl: TRL | None = None
    region: Text | None = None
    ip_status: IPStatus | None = None
    patents: list[Text] | None = None
    cpc: list[Text] | None = None
    keywords: list[Text] | None = None
    language: Language | None = None
    licensing: Licensing | None = None
    confidential: bool | None = None


class TechnologyPublic(BaseModel):
    """A technology as the API shows it (never its content or tracking hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ref: str
    title: str
    description: str
    owner: str
    domains: list[str]
    trl: int
    region: str
    ip_status: str
    patents: list[str]
    cpc: list[str]
    keywords: list[str]
    language: str
    licensing: str | None
    confidential: bool
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
    owner: str
    domains: list[str]
    trl: int
    region: str
    confidential: bool


# -- needs ----------------------------------------------------------------------------------
class NeedCreate(NeedIn):
    """A new need: the import fields of data/FORMATS.md; ``id`` is generated if absent."""

    id: Ref | None = None  # type: ignore[assignment]

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
    domains: list[Text] | None = None
    trl_min: TRL | None = None
    trl_max: TRL | None = None
    trl_hard: bool | None = None
    region_scope: RegionScope | None = None
    home_region: Text | None = None
    region_hard: bool | None = None
    budget_min: float | None = Field(default=None, ge=0)
    budget_max: float | None = Field(default=None, ge=0)
    currency: Currency | None = None
    deadline: date | None = None
    contact: Contact | None = None
    language: Language | None = None
    confidential: bool | None = None


class NeedPublic(BaseModel):
    """A need as the API shows it (never its content or tracking hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ref: str
    enterprise: str
    title: str
    description: str
    domains: list[str]
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
    enterprise: str
    domains: list[str]
    trl_min: int
    trl_max: int | None
    home_region: str
    region_scope: str
    confidential: bool


# -- imports --------------------------------------------------------------------------------
class RowErrorPublic(BaseModel):
    """One rejected row of an import file."""

    line: int
    message: str


class ImportReport(BaseModel):
    """What a bulk import wrote, and the rows it skipped (with ``skip_invalid``)."""

    kind: str
    created: int
    updated: int
    skipped: list[RowErrorPublic] = Field(default_factory=list)


# -- search and matches ---------------------------------------------------------------------
class SearchRequest(BaseModel):
    """Free-text search over technologies (default) or needs, with ranking filters.

    For ``target=technologies`` the filters act as a need: ``domains`` its fields,
    ``trl_min``/``trl_max`` its readiness window, ``region`` its home region and ``scope`` its
    reach. For ``target=needs`` they describe the technology on offer: ``domains`` its fields,
    ``trl_min`` (or ``trl_max``) its readiness and ``region`` where it is. ``hard`` turns the
    readiness and region preferences into filters.
    """

    model_config = ConfigDict(extra="forbid")

    text: QueryText
    target: Literal["technologies", "needs"] = "technologies"
    domains: list[Text] = Field(default_factory=list, max_length=20)
    trl_min: TRL | None = None
    trl_max: TRL | None = None
    region: Text | None = None
    scope: RegionScope = RegionScope.international
    hard: bool = False
    top: int = Field(default=10, ge=1, le=100)
    lang: Literal["en", "zh"] | None = Field(
        default=None, description="language of explanations; default: Accept-Language, else en"
    )


class ComponentsPublic(BaseModel):
    """The per-feature scores of a match, each in [0, 1]."""

    semantic: float
    lexical: float
    domain: float
    readiness: float
    region: float


class MatchPublic(BaseModel):
    """One ranked, explained result with the summary of the record it points to."""

    rank: int
    score: float
    components: ComponentsPublic
    explanation: str
    need_id: int | None = None
    need_ref: str | None = None
    technology_id: int | None = None
    technology_ref: str | None = None
    title: str
    record: TechnologySummary | NeedSummary = Field(discriminator="kind")


class MatchList(BaseModel):
    """Ranked results, best first."""

    items: list[MatchPublic]
