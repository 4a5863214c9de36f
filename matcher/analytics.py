"""Regional analytics for transfer centres and demonstration zones.

For a period and a level (``province``: the region as recorded, a province or state, or a
country where no subdivision was given; ``country``; ``grouping``: every named grouping that
contains the region, so one record counts in each of its groupings), per region:

- technologies offered (technologies created in the period, by where they are),
- needs posted (needs created in the period, by the enterprise's home region),
- matches routed, deals opened (created in the period), deals agreed (agreed, signed in the
  period: the contract's signing date, else the deal's last change) and their agreed value by
  currency — all counted at the need's region,

and the flows between regions (need's region → technology's region) of routed matches, deals
opened and deals agreed. The store does the counting (``GROUP BY`` the recorded region codes);
the codes are then mapped to the level here, so the work grows with the number of distinct
regions, not of records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.errors import InvalidInputError
from matcher.store.models import DealRow, NeedRow, RoutedMatchRow, TechnologyRow
from matcher.taxonomy import Taxonomy

LEVELS = ("province", "country", "grouping")
COUNTS = ("technologies", "needs", "routed", "deals_opened", "deals_agreed")
FLOW_COUNTS = ("routed", "deals_opened", "deals_agreed")


@dataclass(frozen=True)
class Period:
    """Dates from ``since`` to ``until``, both included (None: open)."""

    since: date | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.until < self.since:
            raise InvalidInputError(
                f"until ({self.until.isoformat()}) is before since ({self.since.isoformat()})"
            )

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC."""
        start = datetime.combine(self.since, time(), UTC) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time(), UTC) if self.until else None
        return start, end


@dataclass
class RegionFigures:
    """One region's figures for the period."""

    code: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    agreed_value: dict[str, float] = field(default_factory=dict)  # by currency


@dataclass
class Flow:
    """Routed matches and deals from the needs of one region to the technologies of another."""

    source: str
    target: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLOW_COUNTS, 0))
    agreed_value: dict[str, float] = field(default_factory=dict)


def keys_of(tax: Taxonomy, code: str | None, level: str) -> tuple[str, ...]:
    """The level's region keys a recorded region code counts under."""
    if not code:
        return ()
    if level == "province":
        return (code,)
    if level == "country":
        return (tax.country_of(code),)
    if level == "grouping":
        return tuple(sorted(tax.groupings_of(code)))
    raise InvalidInputError(f"level: one of {', '.join(LEVELS)}, not {level!r}")


def _within(query: Any, column: Any, period: Period) -> Any:
    start, end = period.bounds()
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def _pairs(session: Session, model: Any, created: Any, period: Period) -> list[Any]:
    """(need region, technology region, count) of routed matches or deals created in the period."""
    query = (
        select(NeedRow.home_region, TechnologyRow.region, func.count())
        .select_from(model)
        .join(NeedRow, NeedRow.id == model.need_id)
        .join(TechnologyRow, TechnologyRow.id == model.technology_id)
    )
    query = _within(query, created, period).group_by(NeedRow.home_region, TechnologyRow.region)
    return list(session.execute(query))


def _agreed(session: Session, period: Period) -> list[Any]:
    """(need region, technology region, currency, count, value) of deals agreed in the period."""
    signed = func.coalesce(DealRow.signed_on, func.date(DealRow.updated_at))
    query = (
        select(
            NeedRow.home_region,
            TechnologyRow.region,
            DealRow.contract_currency,
            func.count(),
            func.coalesce(func.sum(DealRow.contract_value), 0.0),
        )
        .select_from(DealRow)
        .join(NeedRow, NeedRow.id == DealRow.need_id)
        .join(TechnologyRow, TechnologyRow.id == DealRow.technology_id)
        .where(DealRow.stage == "agreed")
    )
    if period.since is not None:
        query = query.where(signed >= period.since)
    if period.until is not None:
        query = query.where(signed <= period.until)
    return list(
        session.execute(
            query.group_by(NeedRow.home_region, TechnologyRow.region, DealRow.contract_currency)
        )
    )


def _counted(session: Session, column: Any, created: Any, period: Period) -> list[Any]:
    query = _within(select(column, func.count()), created, period).group_by(column)
    return list(session.execute(query))


def regions(session: Session, tax: Taxonomy, *, level: str, period: Period) -> list[RegionFigures]:
    """Each region's figures at ``level`` for the period, busiest first."""
    keys_of(tax, "CN", level)  # an unknown level is refused before any query
    out: dict[str, RegionFigures] = {}

    def add(code: str | None, what: str, n: int) -> None:
        for key in keys_of(tax, code, level):
            out.setdefault(key, RegionFigures(key)).counts[what] += int(n)

    for code, n in _counted(session, TechnologyRow.region, TechnologyRow.created_at, period):
        add(code, "technologies", n)
    for code, n in _counted(session, NeedRow.home_region, NeedRow.created_at, period):
        add(code, "needs", n)
    for need_region, _, n in _pairs(session, RoutedMatchRow, RoutedMatchRow.created_at, period):
        add(need_region, "routed", n)
    for need_region, _, n in _pairs(session, DealRow, DealRow.created_at, period):
        add(need_region, "deals_opened", n)
    for need_region, _, currency, n, value in _agreed(session, period):
        add(need_region, "deals_agreed", n)
        if currency and value:
            for key in keys_of(tax, need_region, level):
                figures = out[key].agreed_value
                figures[currency] = figures.get(currency, 0.0) + float(value)
    return sorted(out.values(), key=lambda r: (-sum(r.counts.values()), r.code))


def flows(session: Session, tax: Taxonomy, *, level: str, period: Period) -> list[Flow]:
    """Routed matches and deals from the needs' regions to the technologies' regions."""
    keys_of(tax, "CN", level)
    out: dict[tuple[str, str], Flow] = {}

    def pairs(a: str | None, b: str | None) -> Iterable[tuple[str, str]]:
        return ((x, y) for x in keys_of(tax, a, level) for y in keys_of(tax, b, level))

    def add(a: str | None, b: str | None, what: str, n: int) -> None:
        for key in pairs(a, b):
            out.setdefault(key, Flow(*key)).counts[what] += int(n)

    for a, b, n in _pairs(session, RoutedMatchRow, RoutedMatchRow.created_at, period):
        add(a, b, "routed", n)
    for a, b, n in _pairs(session, DealRow, DealRow.created_at, period):
        add(a, b, "deals_opened", n)
    for a, b, currency, n, value in _agreed(session, period):
        add(a, b, "deals_agreed", n)
        if currency and value:
            for key in pairs(a, b):
                figures = out[key].agreed_value
                figures[currency] = figures.get(currency, 0.0) + float(value)
    return sorted(out.values(), key=lambda f: (-sum(f.counts.values()), f.source, f.target))


def totals(rows: Iterable[RegionFigures]) -> dict[str, Any]:
    """Column totals of a regions table (at ``grouping`` level a record may count twice)."""
    counts: dict[str, int] = defaultdict(int)
    value: dict[str, float] = defaultdict(float)
    for row in rows:
        for name, n in row.counts.items():
            counts[name] += n
        for currency, v in row.agreed_value.items():
            value[currency] += v
    return {"counts": {k: counts[k] for k in COUNTS}, "agreed_value": dict(value)}
