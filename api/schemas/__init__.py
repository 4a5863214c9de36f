"""Request and response models of the JSON API: one small family of models per entity.

``from api.schemas import X`` reads any of them; each family lives in its own module.
"""

from __future__ import annotations

from api.schemas.common import (
    Contact,
    Currency,
    ImportReport,
    Name,
    Page,
    QueryText,
    RowErrorPublic,
)
from api.schemas.matches import ComponentsPublic, MatchList, MatchPublic, SearchRequest
from api.schemas.needs import NeedCreate, NeedPublic, NeedSummary, NeedUpdate
from api.schemas.taxonomy import DomainSuggestion, DomainSuggestions
from api.schemas.technologies import (
    TechnologyCreate,
    TechnologyPublic,
    TechnologySummary,
    TechnologyUpdate,
)

__all__ = [
    "ComponentsPublic",
    "Contact",
    "Currency",
    "DomainSuggestion",
    "DomainSuggestions",
    "ImportReport",
    "MatchList",
    "MatchPublic",
    "Name",
    "NeedCreate",
    "NeedPublic",
    "NeedSummary",
    "NeedUpdate",
    "Page",
    "QueryText",
    "RowErrorPublic",
    "SearchRequest",
    "TechnologyCreate",
    "TechnologyPublic",
    "TechnologySummary",
    "TechnologyUpdate",
]
