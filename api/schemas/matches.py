"""Free-text search and ranked, explained matches."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import QueryText
from api.schemas.needs import NeedSummary
from api.schemas.technologies import TechnologySummary
from matcher import limits
from matcher.domain import TRL, Code, RegionScope, Side


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
    target: Side = Side.technologies
    domains: list[Code] = Field(default_factory=list, max_length=limits.MAX_DOMAINS)
    trl_min: TRL | None = None
    trl_max: TRL | None = None
    region: Code | None = None
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
