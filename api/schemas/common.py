"""What every family of API models shares: the page of a list, common field types."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from matcher.domain import Contact, Currency, Name
from matcher.limits import clean_text

T = TypeVar("T")

__all__ = [
    "Contact",
    "Currency",
    "DomainConfidence",
    "DomainsInferred",
    "ImportReport",
    "Name",
    "Page",
    "QueryText",
    "RowErrorPublic",
]

QueryText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    BeforeValidator(clean_text),
]

# How a record's domain codes came about: set by a person, or inferred from its text when it was
# saved without any (matcher.infer), with the engine's confidence in them.
DomainsInferred = Annotated[
    bool,
    Field(
        description="true: the domain codes were inferred from the text (none were given), "
        "not set by a person; setting domains (PATCH, import, form) replaces them"
    ),
]
DomainConfidence = Annotated[
    float | None,
    Field(
        ge=0,
        le=1,
        description="the engine's confidence (0–1) in inferred domain codes; null "
        "when a person set them",
    ),
]


class Page(BaseModel, Generic[T]):
    """One page of a filtered list."""

    items: list[T]
    total: int = Field(description="records matching the filters, over all pages")
    limit: int
    offset: int


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
