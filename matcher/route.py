"""Routing: which certified broker receives which ranked match, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.domain import Match
from matcher.store.models import BrokerRow, DealRow, NeedRow, RoutedMatchRow, TechnologyRow
from matcher.taxonomy import Taxonomy

OPEN_STAGES = ("claimed", "contacted", "nda_signed", "negotiating")
LEVEL_RANK = {"beginner": 0, "intermediate": 1, "advanced": 2}
# Rough conversion for the budget rule only; a threshold, not accounting.
TO_CNY = {
    "CNY": 1.0,
    "USD": 7.2,
    "EUR": 7.8,
    "GBP": 9.1,
    "CHF": 8.1,
    "JPY": 0.048,
    "ILS": 1.9,
    "DKK": 1.05,
    "HKD": 0.92,
}


@dataclass(frozen=True)
class RoutingRules:
    """Level rules (from the settings): who may take cross-border or large-budget matches."""

    cross_border_min_level: str = "intermediate"
    large_budget_cny: float = 5_000_000.0
    large_budget_min_level: str = "advanced"
    matches_per_need: int = 3


@dataclass
class Assignment:
    """A match and the broker chosen for it, with the reasons."""

    match: Match
    broker: BrokerRow
    reasons: list[str] = field(default_factory=list)


def broker_load(session: Session, broker_id: int) -> int:
    """Open deals plus routed matches still waiting for the broker."""
    deals = (
        session.scalar(
            select(func.count())
            .select_from(DealRow)
            .where(DealRow.broker_id == broker_id, DealRow.stage.in_(OPEN_STAGES))
        )
        or 0
    )
    waiting = (
        session.scalar(
            select(func.count())
            .select_from(RoutedMatchRow)
            .where(RoutedMatchRow.broker_id == broker_id, RoutedMatchRow.state.in_(("new", "seen")))
        )
        or 0
    )
    return int(deals) + int(waiting)


def required_level(
    need: NeedRow, tech: TechnologyRow, tax: Taxonomy, rules: RoutingRules
) -> tuple[str, list[str]]:
    """The lowest certificate level allowed to handle this pair, and why."""
    level, why = "beginner", []
    if tax.country_of(need.home_region) != tax.country_of(tech.region):
        level = rules.cross_border_min_level
        why.append(f"cross-border match needs {level} level or above")
    budget = (need.budget_max or need.budget_min or 0.0) * TO_CNY.get(need.currency, 1.0)
    if (
        budget > rules.large_budget_cny
        and LEVEL_RANK[rules.large_budget_min_level] >= LEVEL_RANK[level]
    ):
        level = rules.large_budget_min_level
        why.append(f"budget above {rules.large_budget_cny:,.0f} CNY needs {level} level")
    return level, why


def _covers_domain(broker: BrokerRow, codes: Sequence[str], tax: Taxonomy) -> str | None:
    for code in codes:
        for ancestor in tax.ancestors(code):
            if ancestor in broker.domains:
                return ancestor
    return None


def _covers_region(broker: BrokerRow, region: str, tax: Taxonomy) -> str | None:
    return next((area for area in broker.regions if tax.region_in(region, area)), None)


def eligible(
    broker: BrokerRow,
    need: NeedRow,
    tech: TechnologyRow,
    *,
    today: date,
    tax: Taxonomy,
    rules: RoutingRules,
    load: int,
) -> tuple[float, list[str]] | None:
    """Fit score and reasons if the broker may receive the match, else None."""
    if broker.suspended or broker.valid_until < today:
        return None
    level, level_why = required_level(need, tech, tax, rules)
    if LEVEL_RANK[broker.level] < LEVEL_RANK[level]:
        return None
    if load >= broker.capacity:
        return None
    domain = _covers_domain(broker, list(need.domains) + list(tech.domains), tax)
    if domain is None:
        return None
    region = _covers_region(broker, need.home_region, tax) or _covers_region(
        broker, tech.region, tax
    )
    reasons = [
        f"certificate {broker.certificate_no} valid until {broker.valid_until.isoformat()}",
        f"{broker.level} level" + (f" ({'; '.join(level_why)})" if level_why else ""),
        f"covers field {tax.domain_path(domain)}",
    ]
    fit = 2.0 if domain in need.domains or domain in tech.domains else 1.0
    if region is not None:
        reasons.append(f"covers region {tax.region_name(region)}")
        fit += 1.0
    reasons.append(f"workload {load}/{broker.capacity}")
    # Specialisation first, then the lighter workload.
    return fit - load / max(broker.capacity, 1), reasons


def choose_broker(
    session: Session,
    need: NeedRow,
    tech: TechnologyRow,
    *,
    today: date,
    tax: Taxonomy,
    rules: RoutingRules,
    extra_load: dict[int, int] | None = None,
) -> tuple[BrokerRow, list[str]] | None:
    """The best eligible broker for one pair, or None if nobody may take it."""
    extra_load = extra_load or {}
    best: tuple[float, BrokerRow, list[str]] | None = None
    for broker in session.scalars(select(BrokerRow).order_by(BrokerRow.id)):
        load = broker_load(session, broker.id) + extra_load.get(broker.id, 0)
        result = eligible(broker, need, tech, today=today, tax=tax, rules=rules, load=load)
        if result is not None and (best is None or result[0] > best[0]):
            best = (result[0], broker, result[1])
    return (best[1], best[2]) if best else None


def routed_technologies(session: Session, need_id: int) -> set[int]:
    """The technologies already routed for a need (a pair is routed once)."""
    stmt = select(RoutedMatchRow.technology_id).where(RoutedMatchRow.need_id == need_id)
    return set(session.scalars(stmt))


def routed_row(match: Match, *, need_id: int, broker_id: int, reason: str) -> RoutedMatchRow:
    """The inbox row of a ranked match routed to a broker, explanations in every language."""
    return RoutedMatchRow(
        need_id=need_id,
        technology_id=match.technology_id,
        broker_id=broker_id,
        score=match.score,
        components=match.components.as_dict(),
        explanation=match.explanations.get("en", match.explanation),
        explanations=match.explanations or None,
        rank=match.rank,
        reason=reason,
        state="new",
    )


def route_matches(
    session: Session,
    need: NeedRow,
    matches: Sequence[Match],
    *,
    today: date,
    tax: Taxonomy,
    rules: RoutingRules,
) -> list[RoutedMatchRow]:
    """Route the need's top matches, each to the best eligible broker; returns new inbox rows.

    A pair already routed keeps its broker (re-matching never reshuffles a broker's inbox).
    """
    already = routed_technologies(session, need.id)
    extra: dict[int, int] = {}
    routed: list[RoutedMatchRow] = []
    for match in matches[: rules.matches_per_need]:
        if match.technology_id in already:
            continue
        tech = session.get(TechnologyRow, match.technology_id)
        if tech is None:
            continue
        chosen = choose_broker(
            session, need, tech, today=today, tax=tax, rules=rules, extra_load=extra
        )
        if chosen is None:
            continue
        broker, reasons = chosen
        extra[broker.id] = extra.get(broker.id, 0) + 1
        row = routed_row(match, need_id=need.id, broker_id=broker.id, reason="; ".join(reasons))
        session.add(row)
        routed.append(row)
    session.flush()
    return routed
