"""Reading the catalogue: filtered, paginated lists of technologies and needs, lookups by id.

Filters arrive as concrete codes (``CatalogFilter.resolve`` expands a domain to its sub-fields
and a region or grouping to its member regions through the taxonomy), so that the database
does the filtering and the paging on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, cast, false, func, or_, select
from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.store.models import NeedRow, TechnologyRow
from matcher.store.repo.records import ACTIVE, get_by_ref_or_id, row_model
from matcher.store.repo.visibility import Viewer, visible_clause
from matcher.taxonomy import Taxonomy


def domain_codes_under(taxonomy: Taxonomy, code: str) -> frozenset[str]:
    """The domain code and every code below it in the hierarchy."""
    return frozenset(c for c in taxonomy.domains if code in taxonomy.ancestors(c))


def region_codes_in(taxonomy: Taxonomy, area: str) -> frozenset[str]:
    """The known region codes that lie in ``area`` (a country, subdivision or grouping)."""
    return frozenset(c for c in taxonomy.regions if taxonomy.region_in(c, area))


@dataclass(frozen=True)
class CatalogFilter:
    """What a list keeps; ``None`` filters nothing.

    Attributes:
        domains: keep records tagged with any of these exact domain codes.
        regions: keep records located in (technologies) or based in (needs) one of these codes.
        trl_min, trl_max: a technology's TRL lies in the window; a need's window overlaps it.
        text: case-insensitive substring of the title or the description.
    """

    domains: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    trl_min: int | None = None
    trl_max: int | None = None
    text: str | None = None

    @classmethod
    def resolve(
        cls,
        taxonomy: Taxonomy,
        *,
        domain: str | None = None,
        region: str | None = None,
        trl_min: int | None = None,
        trl_max: int | None = None,
        text: str | None = None,
    ) -> CatalogFilter:
        """A filter from requested codes: a domain covers its sub-fields, an area its members."""
        return cls(
            domains=None if domain is None else domain_codes_under(taxonomy, domain),
            regions=None if region is None else region_codes_in(taxonomy, region),
            trl_min=trl_min,
            trl_max=trl_max,
            text=text or None,
        )


@dataclass(frozen=True)
class RecordPage:
    """One page of a filtered list and how many records match over all pages."""

    rows: Sequence[TechnologyRow | NeedRow]
    total: int


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tagged_with_any(column: Any, codes: Iterable[str]) -> ColumnElement[bool]:
    """A JSON list column holds one of ``codes``.

    The list is stored as JSON text on both databases (SQLAlchemy's ``JSON`` type: TEXT on
    SQLite, ``json`` on PostgreSQL, which keeps the text as written), so a code appears in it
    exactly as ``"code"`` with its quotes; the quotes keep ``04`` from matching ``04.06``.
    """
    wanted = sorted(codes)
    if not wanted:
        return false()
    text = cast(column, String)
    return or_(*(text.like(f'%"{like_escape(code)}"%', escape="\\") for code in wanted))


def _conditions(side: Side, where: CatalogFilter, viewer: Viewer) -> list[ColumnElement[bool]]:
    model = row_model(side)
    conditions: list[ColumnElement[bool]] = [
        model.status == ACTIVE,
        visible_clause(side, viewer=viewer),
    ]
    if where.domains is not None:
        conditions.append(tagged_with_any(model.domains, where.domains))
    if where.regions is not None:
        column = TechnologyRow.region if side is Side.technologies else NeedRow.home_region
        conditions.append(column.in_(sorted(where.regions)))
    if side is Side.technologies:
        if where.trl_min is not None:
            conditions.append(TechnologyRow.trl >= where.trl_min)
        if where.trl_max is not None:
            conditions.append(TechnologyRow.trl <= where.trl_max)
    else:  # a need is kept when its readiness window overlaps the one asked for
        if where.trl_max is not None:
            conditions.append(NeedRow.trl_min <= where.trl_max)
        if where.trl_min is not None:
            conditions.append(or_(NeedRow.trl_max.is_(None), NeedRow.trl_max >= where.trl_min))
    if where.text:
        pattern = f"%{like_escape(where.text)}%"
        conditions.append(
            or_(
                model.title.ilike(pattern, escape="\\"),
                model.description.ilike(pattern, escape="\\"),
            )
        )
    return conditions


def list_records(
    session: Session,
    *,
    side: Side,
    viewer: Viewer,
    where: CatalogFilter,
    limit: int,
    offset: int,
) -> RecordPage:
    """One page (by id) of the active records of ``side`` the viewer may see, filtered."""
    model = row_model(side)
    conditions = _conditions(side, where, viewer)
    total = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    stmt = select(model).where(*conditions).order_by(model.id).limit(limit).offset(offset)
    return RecordPage(rows=list(session.scalars(stmt)), total=int(total))


def find_record(session: Session, *, side: Side, key: str | int) -> TechnologyRow | NeedRow | None:
    """A technology or need by numeric id or reference (whatever its status)."""
    row: TechnologyRow | NeedRow | None = get_by_ref_or_id(session, row_model(side), key)
    return row


def record_by_ref(session: Session, *, side: Side, ref: str) -> TechnologyRow | NeedRow | None:
    """A technology or need by its reference."""
    model = row_model(side)
    row: Any = session.scalar(select(model).where(model.ref == ref))
    return row


def ref_taken(session: Session, *, side: Side, ref: str) -> bool:
    """Whether a record of ``side`` already has this reference (archived ones included)."""
    model = row_model(side)
    return session.scalar(select(model.id).where(model.ref == ref)) is not None


@dataclass(frozen=True)
class Stored:
    """A stored record's identity and the hash of its embedded text."""

    ref: str
    id: int
    content_hash: str


def stored_by_refs(session: Session, *, side: Side, refs: Iterable[str]) -> dict[str, Stored]:
    """Id and content hash of the records with these references, keyed by reference."""
    wanted = sorted(set(refs))
    if not wanted:
        return {}
    model = row_model(side)
    found: dict[str, Stored] = {}
    for start in range(0, len(wanted), 900):  # stay under SQLite's bound-parameter limit
        part = wanted[start : start + 900]
        stmt = select(model.ref, model.id, model.content_hash).where(model.ref.in_(part))
        for ref, row_id, digest in session.execute(stmt):
            found[ref] = Stored(ref=ref, id=row_id, content_hash=digest)
    return found
