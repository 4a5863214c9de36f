"""What every family of API models shares: the page of a list, common field types."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field, StringConstraints

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
