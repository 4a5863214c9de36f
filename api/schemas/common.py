"""What every family of API models shares: the page of a list, common field types."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from matcher.domain import Contact, Currency, Name
from matcher.limits import clean_text

T = TypeVar("T")

__all__ = ["Contact", "Currency", "ImportReport", "Name", "Page", "QueryText", "RowErrorPublic"]

QueryText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    BeforeValidator(clean_text),
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
