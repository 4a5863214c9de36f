"""The exchange market: the public listing of technologies open for licensing, the contracts of
agreed deals, and the market's statistics counted from those contracts.

What the public listing shows (anyone, no account):

- A technology is listed while it is active and names a form of licensing (``licensing`` set;
  ``Licensing`` has no "not for licensing" value, so any value lists it).
- A public entry shows the record as its owner described it: reference, title, description,
  owner, fields, TRL, region, IP status, the form of licensing, the licensing terms and the
  asking-price range. Never the contact: the site promises submitters never to publish their
  contact details; buyers reach an owner through a broker.
- A confidential technology is listed as a teaser: its listing number (the numeric id, which
  says nothing about the owner, where a reference may), its fields, TRL, country (not the
  subdivision: in a small field, a province can name the owner) and form of licensing (one of a
  few codes). Nothing written in words: no reference, title, description, owner, contact,
  licensing terms or asking price, any of which may name the owner or the invention. A search
  for words never matches a teaser (a substring query would read its text letter by letter),
  and a region filter keeps a teaser only when the area asked for holds its whole country.

A contract is recorded on an agreed deal (``record_contract``): contract type, value and
currency, signing date, parties, as a technology contract registration asks for them. The
statistics count agreed deals with a recorded contract: transactions and total value per
currency, grouped by field (the top-level field of the technology's first domain code), region
(the technology's region: where the technology comes from, as registration counts "output"),
period of signing (month, quarter, year) or contract type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from matcher.domain import ContractIn, ContractType
from matcher.errors import ConflictError, FieldError, RecordInvalidError, field_errors_of
from matcher.store.models import DealEventRow, DealRow
from matcher.store.repo import catalog
from matcher.store.repo import deals as deals_repo
from matcher.store.repo import market as repo
from matcher.store.repo.market import AGREED, ContractFact
from matcher.taxonomy import Taxonomy

CONTRACT_TYPES = tuple(kind.value for kind in ContractType)
UNCLASSIFIED = "-"  # the field of a technology without domain codes


class GroupBy(StrEnum):
    """What the statistics group transactions by."""

    field = "field"
    region = "region"
    period = "period"
    type = "type"


class Period(StrEnum):
    """The length of a period of signing."""

    month = "month"
    quarter = "quarter"
    year = "year"


# -- the listing -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One listed technology as the public sees it; a teaser leaves every text field None."""

    id: int
    confidential: bool
    domains: list[str]
    trl: int
    region: str
    licensing: str | None
    ref: str | None = None
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    ip_status: str | None = None
    licensing_terms: str | None = None
    asking_min: float | None = None
    asking_max: float | None = None
    asking_currency: str | None = None


def entry_of(row: Any, taxonomy: Taxonomy) -> Entry:
    """The public entry of a listed technology (a row or anything with its fields): in full,
    or the teaser of a confidential one (see the module's docstring). Never the contact."""
    if row.confidential:
        return Entry(
            id=row.id,
            confidential=True,
            domains=list(row.domains or ()),
            trl=row.trl,
            region=taxonomy.country_of(row.region),
            licensing=row.licensing,
        )
    return Entry(
        id=row.id,
        confidential=False,
        domains=list(row.domains or ()),
        trl=row.trl,
        region=row.region,
        licensing=row.licensing,
        ref=row.ref,
        title=row.title,
        description=row.description,
        owner=row.owner,
        ip_status=row.ip_status,
        licensing_terms=row.licensing_terms,
        asking_min=row.asking_min,
        asking_max=row.asking_max,
        asking_currency=row.asking_currency,
    )


@dataclass(frozen=True)
class Listing:
    """One page of the listing, newest first."""

    entries: list[Entry]
    total: int
    limit: int
    offset: int


def _unknown(name: str, kind: str, code: str, message: str) -> RecordInvalidError:
    error = FieldError(type=kind, loc=(name,), msg=message, ctx={"code": code})
    return RecordInvalidError([error], what="filter")


def listing_filter(
    taxonomy: Taxonomy,
    *,
    domain: str | None = None,
    trl_min: int | None = None,
    region: str | None = None,
    q: str | None = None,
) -> repo.ListingFilter:
    """The listing's filter from the codes asked for (unknown codes: RecordInvalidError)."""
    if domain is not None and domain not in taxonomy.domains:
        message = f"unknown domain code {domain!r} (see data/taxonomy/domains.json)"
        raise _unknown("domain", "unknown_domain", domain, message)
    if region is not None and not taxonomy.is_region(region) and region not in taxonomy.groupings:
        message = f"unknown region or grouping code {region!r}; use codes such as CN, CN-JS, EU"
        raise _unknown("region", "unknown_region", region, message)
    regions = teasers = None
    if region is not None:
        regions = catalog.region_codes_in(taxonomy, region)
        countries = {code for code in regions if taxonomy.country_of(code) == code}
        teasers = frozenset(c for c in taxonomy.regions if taxonomy.country_of(c) in countries)
    return repo.ListingFilter(
        domains=None if domain is None else catalog.domain_codes_under(taxonomy, domain),
        regions=regions,
        teaser_regions=teasers,
        trl_min=trl_min,
        text=(q or "").strip() or None,
    )


def listing(
    session: Session,
    taxonomy: Taxonomy,
    *,
    domain: str | None = None,
    trl_min: int | None = None,
    region: str | None = None,
    q: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> Listing:
    """One page of the technologies open for licensing, as the public sees them.

    Args:
        domain: a domain code; a top-level field includes its sub-fields.
        trl_min: the lowest TRL kept.
        region: a country, subdivision or grouping code.
        q: words in a public entry's title or description.
    """
    where = listing_filter(taxonomy, domain=domain, trl_min=trl_min, region=region, q=q)
    page = repo.listed(session, where=where, limit=limit, offset=offset)
    entries = [entry_of(row, taxonomy) for row in page.rows]
    return Listing(entries=entries, total=page.total, limit=limit, offset=offset)


# -- contracts -------------------------------------------------------------------------------
def check_contract(raw: ContractIn | Mapping[str, Any]) -> ContractIn:
    """A contract registration validated (type, value ≥ 0, currency, signing date not in the
    future, 1–10 named parties); RecordInvalidError with each field's problem otherwise."""
    if isinstance(raw, ContractIn):
        raw = raw.model_dump()
    try:
        return ContractIn.model_validate(dict(raw))
    except ValidationError as exc:
        errors = [
            FieldError(type=e.type, loc=("contract", *e.loc), msg=e.msg, ctx=e.ctx)
            for e in field_errors_of(exc.errors())
        ]
        raise RecordInvalidError(errors, what="contract") from None


def check_recordable(stage: str, deal_id: int) -> None:
    """Refuse a contract on a deal that is not agreed: a contract records an agreement."""
    if stage != AGREED:
        raise ConflictError(
            f"deal {deal_id} is {stage}; a contract is recorded once the deal is agreed"
        )


def contract_of(deal: DealRow) -> ContractIn | None:
    """The contract recorded on a deal, or None."""
    if deal.contract_type is None or deal.signed_on is None:
        return None
    return ContractIn.model_construct(
        type=ContractType(deal.contract_type),
        value=deal.contract_value or 0.0,
        currency=deal.contract_currency or "",
        signed_on=deal.signed_on,
        parties=list(deal.parties or ()),
    )


def record_contract(
    session: Session, deal: DealRow, contract: ContractIn | Mapping[str, Any], *, actor: str
) -> DealEventRow:
    """Record (or correct) the contract of an agreed deal, audited on the deal's trail."""
    valid = check_contract(contract)
    check_recordable(deal.stage, deal.id)
    corrected = deal.contract_type is not None
    repo.set_contract(
        session,
        deal,
        contract_type=valid.type.value,
        value=valid.value,
        currency=valid.currency,
        signed_on=valid.signed_on,
        parties=valid.parties,
    )
    summary = (
        f"{'corrected' if corrected else 'recorded'} the {valid.type.value} contract: "
        f"{valid.value:,.2f} {valid.currency}, signed {valid.signed_on.isoformat()} by "
        f"{'; '.join(valid.parties)}"
    )
    return deals_repo.add_event(
        session, deal_id=deal.id, actor=actor, kind="contract", note=summary
    )


# -- statistics ------------------------------------------------------------------------------
@dataclass
class Total:
    """Transactions and their value in one currency."""

    currency: str
    transactions: int = 0
    value: float = 0.0


@dataclass
class StatGroup:
    """One group of the statistics: its key (a code or a period) and totals per currency."""

    key: str
    transactions: int = 0
    totals: dict[str, Total] = field(default_factory=dict)


@dataclass(frozen=True)
class Statistics:
    """The market's statistics grouped one way, over a window of signing dates."""

    by: GroupBy
    period: Period
    since: date | None
    until: date | None
    groups: list[StatGroup]


def period_key(day: date, period: Period | str) -> str:
    """The period a day falls in: ``2026-03``, ``2026-Q1`` or ``2026``."""
    period = Period(period)
    if period is Period.month:
        return f"{day.year:04d}-{day.month:02d}"
    if period is Period.quarter:
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


def group_key(fact: ContractFact, by: GroupBy | str, period: Period | str, tax: Taxonomy) -> str:
    """The group a contract counts in (see the module's docstring)."""
    by = GroupBy(by)
    if by is GroupBy.field:
        first = fact.domains[0] if fact.domains else None
        chain = tax.ancestors(first) if first else []
        return chain[-1] if chain else UNCLASSIFIED
    if by is GroupBy.region:
        return fact.region
    if by is GroupBy.type:
        return fact.contract_type
    return period_key(fact.signed_on, period)


def tabulate(
    facts: Iterable[ContractFact], by: GroupBy | str, period: Period | str, tax: Taxonomy
) -> list[StatGroup]:
    """Transactions and value per currency per group, groups by key (periods in time order)."""
    groups: dict[str, StatGroup] = {}
    for fact in facts:
        key = group_key(fact, by, period, tax)
        group = groups.setdefault(key, StatGroup(key=key))
        group.transactions += 1
        total = group.totals.setdefault(fact.currency, Total(currency=fact.currency))
        total.transactions += 1
        total.value += fact.value
    for group in groups.values():
        group.totals = dict(sorted(group.totals.items()))
    return [groups[key] for key in sorted(groups)]


def statistics(
    session: Session,
    taxonomy: Taxonomy,
    *,
    by: GroupBy | str = GroupBy.field,
    period: Period | str = Period.month,
    since: date | None = None,
    until: date | None = None,
) -> Statistics:
    """The market's statistics from the contracts of agreed deals signed in ``[since, until]``."""
    if since is not None and until is not None and until < since:
        error = FieldError(
            type="date_window",
            loc=("until",),
            msg=f"until ({until.isoformat()}) is before since ({since.isoformat()})",
            ctx={"since": since.isoformat(), "until": until.isoformat()},
        )
        raise RecordInvalidError([error], what="window")
    facts = repo.contract_facts(session, since=since, until=until)
    groups = tabulate(facts, by, period, taxonomy)
    return Statistics(GroupBy(by), Period(period), since, until, groups)


def group_name(taxonomy: Taxonomy, by: GroupBy | str, key: str, lang: str = "en") -> str:
    """A group's name for people: a field's or region's name; a period or type as it is."""
    by = GroupBy(by)
    if by is GroupBy.field and key in taxonomy.domains:
        return taxonomy.domains[key].name(lang)
    if by is GroupBy.region:
        return taxonomy.region_name(key, lang)
    return key
