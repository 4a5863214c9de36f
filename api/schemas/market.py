"""The exchange market in the API: listed technologies (entries and teasers), a deal's
contract, the market's statistics."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from matcher import market
from matcher.domain import ContractIn
from matcher.taxonomy import Taxonomy

GroupByParam = Literal["field", "region", "period", "type"]
PeriodParam = Literal["month", "quarter", "year"]


class MarketEntry(BaseModel):
    """A technology open for licensing. A confidential one is a teaser: its listing number,
    fields, TRL, country and form of licensing; every other field is null. No entry shows a
    contact: buyers reach owners through a broker."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="the listing number")
    confidential: bool = Field(description="true: a teaser, without the owner and the text")
    domains: list[str]
    domain_names: list[str] = Field(default_factory=list, description="in the reader's language")
    trl: int
    region: str = Field(description="the region; a teaser's country only")
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

    @classmethod
    def of(cls, entry: market.Entry, taxonomy: Taxonomy, lang: str) -> MarketEntry:
        """An engine entry with its fields named in ``lang``."""
        names = [taxonomy.domain_path(c, lang) for c in entry.domains if c in taxonomy.domains]
        return cls.model_validate(entry).model_copy(update={"domain_names": names})


class MarketPage(BaseModel):
    """One page of the listing, newest first."""

    items: list[MarketEntry]
    total: int
    limit: int
    offset: int


class CurrencyTotal(BaseModel):
    """Transactions in one currency and their total value."""

    currency: str
    transactions: int
    value: float


class StatGroupPublic(BaseModel):
    """One group: a field, region, period or contract type, with its totals per currency."""

    key: str
    name: str
    transactions: int
    totals: list[CurrencyTotal]


class MarketStats(BaseModel):
    """Transactions and value (per currency) of agreed deals with a recorded contract."""

    by: GroupByParam
    period: PeriodParam
    since: date | None
    until: date | None
    transactions: int
    groups: list[StatGroupPublic]

    @classmethod
    def of(cls, stats: market.Statistics, taxonomy: Taxonomy, lang: str) -> MarketStats:
        """The engine's statistics with each group named in ``lang``."""
        groups = [
            StatGroupPublic(
                key=g.key,
                name=market.group_name(taxonomy, stats.by, g.key, lang),
                transactions=g.transactions,
                totals=[
                    CurrencyTotal(currency=t.currency, transactions=t.transactions, value=t.value)
                    for t in g.totals.values()
                ],
            )
            for g in stats.groups
        ]
        return cls(
            by=stats.by.value,
            period=stats.period.value,
            since=stats.since,
            until=stats.until,
            transactions=sum(g.transactions for g in stats.groups),
            groups=groups,
        )


def contract_view(deal: Any) -> dict[str, Any] | None:
    """A deal's recorded contract as JSON, or None."""
    contract: ContractIn | None = market.contract_of(deal)
    return None if contract is None else contract.model_dump(mode="json")
