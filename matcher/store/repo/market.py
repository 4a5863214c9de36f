"""The exchange market's reads and writes: listed technologies, agreed deals' contracts.

A technology is listed while it is active and names a form of licensing. Filters arrive as
concrete codes (``ListingFilter``, resolved by ``matcher.market`` through the taxonomy), so the
database filters and pages. A confidential technology is only ever matched on what its teaser
shows (its fields, TRL and country), never on its text or its exact region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from matcher.store.models import DealRow, TechnologyRow
from matcher.store.repo.catalog import like_escape, tagged_with_any
from matcher.store.repo.records import ACTIVE

AGREED = "agreed"


@dataclass(frozen=True)
class ListingFilter:
    """What the listing keeps; ``None`` filters nothing.

    Attributes:
        domains: exact domain codes (a field with its sub-fields, resolved).
        regions: region codes a public entry's region must be one of.
        teaser_regions: region codes whose country lies in the area asked for: a teaser shows
            only its country, so only an area that holds whole countries keeps it.
        trl_min: lowest TRL.
        text: a substring of a public entry's title or description (teasers never match).
    """

    domains: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    teaser_regions: frozenset[str] | None = None
    trl_min: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class ListingPage:
    """One page of listed technologies, newest first, and how many are listed over all pages."""

    rows: Sequence[TechnologyRow]
    total: int


def _conditions(where: ListingFilter) -> list[ColumnElement[bool]]:
    tech = TechnologyRow
    conditions: list[ColumnElement[bool]] = [tech.status == ACTIVE, tech.licensing.is_not(None)]
    if where.domains is not None:
        conditions.append(tagged_with_any(tech.domains, where.domains))
    if where.trl_min is not None:
        conditions.append(tech.trl >= where.trl_min)
    public = tech.confidential.is_(False)
    if where.regions is not None:
        teaser_in = tech.region.in_(sorted(where.teaser_regions or ()))
        conditions.append(
            or_(and_(public, tech.region.in_(sorted(where.regions))), and_(~public, teaser_in))
        )
    if where.text:
        pattern = f"%{like_escape(where.text)}%"
        text_hit = or_(
            tech.title.ilike(pattern, escape="\\"), tech.description.ilike(pattern, escape="\\")
        )
        conditions.append(and_(public, text_hit))
    return conditions


def listed(session: Session, *, where: ListingFilter, limit: int, offset: int) -> ListingPage:
    """One page of the listed technologies, newest first."""
    conditions = _conditions(where)
    total = session.scalar(select(func.count()).select_from(TechnologyRow).where(*conditions))
    stmt = (
        select(TechnologyRow)
        .where(*conditions)
        .order_by(TechnologyRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return ListingPage(rows=list(session.scalars(stmt)), total=int(total or 0))


@dataclass(frozen=True)
class ContractFact:
    """One agreed deal's registered contract and where its technology comes from: what the
    market's statistics are counted from."""

    deal_id: int
    contract_type: str
    value: float
    currency: str
    signed_on: date
    domains: tuple[str, ...]
    region: str


def contract_facts(
    session: Session, *, since: date | None = None, until: date | None = None
) -> list[ContractFact]:
    """The registered contracts of agreed deals signed in ``[since, until]``, by signing date."""
    stmt: Any = (
        select(
            DealRow.id,
            DealRow.contract_type,
            DealRow.contract_value,
            DealRow.contract_currency,
            DealRow.signed_on,
            TechnologyRow.domains,
            TechnologyRow.region,
        )
        .join(TechnologyRow, TechnologyRow.id == DealRow.technology_id)
        .where(
            DealRow.stage == AGREED,
            DealRow.contract_type.is_not(None),
            DealRow.contract_value.is_not(None),
            DealRow.contract_currency.is_not(None),
            DealRow.signed_on.is_not(None),
        )
    )
    if since is not None:
        stmt = stmt.where(DealRow.signed_on >= since)
    if until is not None:
        stmt = stmt.where(DealRow.signed_on <= until)
    rows = session.execute(stmt.order_by(DealRow.signed_on, DealRow.id))
    return [
        ContractFact(
            deal_id=deal_id,
            contract_type=kind,
            value=float(value),
            currency=currency,
            signed_on=signed,
            domains=tuple(domains or ()),
            region=region,
        )
        for deal_id, kind, value, currency, signed, domains, region in rows
    ]


def set_contract(
    session: Session,
    deal: DealRow,
    *,
    contract_type: str,
    value: float,
    currency: str,
    signed_on: date,
    parties: list[str],
) -> None:
    """Write a deal's contract registration (the caller checked that the deal is agreed)."""
    deal.contract_type = contract_type
    deal.contract_value = value
    deal.contract_currency = currency
    deal.signed_on = signed_on
    deal.parties = list(parties)
    session.flush()
