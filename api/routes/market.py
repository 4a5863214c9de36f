"""Routes of the exchange market: the public listing and the market's statistics (no token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import EngineDep, ReaderLangDep, SessionDep
from api.routes.records import DomainFilter, Limit, Offset, RegionFilter, TextFilter, TrlFilter
from api.schemas.market import GroupByParam, MarketEntry, MarketPage, MarketStats, PeriodParam
from matcher import market
from matcher.domain import IsoDate

router = APIRouter(prefix="/api/v1/market", tags=["market"])

Since = Annotated[IsoDate | None, Query(description="first signing date counted (YYYY-MM-DD)")]
Until = Annotated[IsoDate | None, Query(description="last signing date counted (YYYY-MM-DD)")]


@router.get("", response_model=MarketPage)
def market_listing(
    engine: EngineDep,
    session: SessionDep,
    lang: ReaderLangDep,
    domain: DomainFilter = None,
    trl_min: TrlFilter = None,
    region: RegionFilter = None,
    q: TextFilter = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Any:
    """Technologies open for licensing, newest first; anyone may read it (no token).

    A confidential technology is a teaser: listing number, fields, TRL, country and form of
    licensing, nothing else. No entry shows a contact. ``q`` searches public entries' text
    only; a region filter keeps a teaser only when the area holds its whole country.
    """
    page = market.listing(
        session,
        engine.taxonomy,
        domain=domain,
        trl_min=trl_min,
        region=region,
        q=q,
        limit=limit,
        offset=offset,
    )
    items = [MarketEntry.of(entry, engine.taxonomy, lang) for entry in page.entries]
    return MarketPage(items=items, total=page.total, limit=page.limit, offset=page.offset)


@router.get("/stats", response_model=MarketStats)
def market_statistics(
    engine: EngineDep,
    session: SessionDep,
    lang: ReaderLangDep,
    by: Annotated[GroupByParam, Query(description="group by field, region, period or type")] = (
        "field"
    ),
    period: Annotated[PeriodParam, Query(description="the length of a period")] = "month",
    since: Since = None,
    until: Until = None,
) -> Any:
    """Transactions and value per currency of agreed deals with a recorded contract, grouped
    by the technology's field or region, the period of signing or the contract type."""
    stats = market.statistics(
        session, engine.taxonomy, by=by, period=period, since=since, until=until
    )
    return MarketStats.of(stats, engine.taxonomy, lang)
