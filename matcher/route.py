"""Routing: which certified broker receives which ranked match, and why.

The rules are plain functions over plain rows (anything with the columns' attributes), so they
are tested without a database or a model; ``matcher.routing`` runs them against the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from matcher.domain import Match
from matcher.phrases import LANGUAGES
from matcher.taxonomy import Taxonomy

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
# Scopes within which a need only takes technologies from its own country.
DOMESTIC_SCOPES = frozenset({"local", "national"})


class RoutingState(StrEnum):
    """Where a need stands with routing."""

    pending = "pending"  # stored, not routed yet
    routed = "routed"  # at least one match sits in a broker's inbox
    unrouted = "unrouted"  # nobody could take it; ``routing_reason`` says why
    closed = "closed"  # a deal on it was agreed: never routed again


@dataclass(frozen=True)
class RoutingRules:
    """Routing settings (``MATCHER_ROUTE_*``): level rules, how many, how good."""

    cross_border_min_level: str = "intermediate"
    large_budget_cny: float = 5_000_000.0
    large_budget_min_level: str = "advanced"
    matches_per_need: int = 3
    min_score: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> RoutingRules:
        """The rules of ``Settings.route`` (``MATCHER_ROUTE_*``)."""
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


# -- reasons in the reader's language ------------------------------------------------------
LEVEL_NAMES = {"zh": {"beginner": "初级", "intermediate": "中级", "advanced": "高级"}}
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "certificate": "certificate {certificate_no} valid until {valid_until}",
        "level": "{level} level",
        "cross_border": "cross-border match needs {level} level or above",
        "large_budget": "budget above {limit:,.0f} CNY needs {level} level",
        "field": "covers field {field}",
        "region": "covers region {region}",
        "workload": "workload {load}/{capacity}",
        "returned": "taken back from {broker} ({why})",
        "why_suspended": "suspended",
        "why_expired": "certificate expired",
        "no_match": "no technology scored at least {min_score:.2f} for this need",
        "out_of_scope": "every candidate technology lies outside the need's {scope} scope",
        "no_broker": "no certified broker can take it now: {causes}",
        "cause_capacity": "{n} at full capacity",
        "cause_level": "{n} below the level it needs",
        "cause_field": "{n} do not cover its field",
        "cause_lapsed": "{n} suspended or expired",
        "no_brokers": "no brokers are registered",
        "routed": "{n} match(es) routed to brokers",
        "sep": "; ",
    },
    "zh": {
        "certificate": "证书 {certificate_no} 有效期至 {valid_until}",
        "level": "{level}技术经理人",
        "cross_border": "跨境匹配需要{level}及以上级别",
        "large_budget": "预算超过 {limit:,.0f} 元人民币，需要{level}级别",
        "field": "负责领域：{field}",
        "region": "负责地区：{region}",
        "workload": "工作量 {load}/{capacity}",
        "returned": "从 {broker} 收回（{why}）",
        "why_suspended": "已暂停",
        "why_expired": "证书已过期",
        "no_match": "没有技术的匹配得分达到 {min_score:.2f}",
        "out_of_scope": "所有候选技术都在该需求的{scope}范围之外",
        "no_broker": "目前没有持证技术经理人能够承接：{causes}",
        "cause_capacity": "{n} 位已满负荷",
        "cause_level": "{n} 位级别不够",
        "cause_field": "{n} 位不负责该领域",
        "cause_lapsed": "{n} 位已暂停或证书过期",
        "no_brokers": "尚无登记的技术经理人",
        "routed": "已将 {n} 个匹配分派给技术经理人",
        "sep": "；",
    },
}
SCOPE_NAMES = {
    "en": {"local": "local", "national": "national", "international": "international"},
    "zh": {"local": "本地", "national": "国内", "international": "国际"},
}


@dataclass(frozen=True)
class Reason:
    """One reason, kept as a phrase key and its values so it can be written in any language.

    Values named ``level``, ``field``, ``region`` or ``scope`` are codes, named in the reader's
    language when written.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, lang: str, tax: Taxonomy) -> str:
        """The reason in ``lang``."""
        table = PHRASES.get(lang, PHRASES["en"])
        values = dict(self.params)
        if "level" in values:
            values["level"] = LEVEL_NAMES.get(lang, {}).get(values["level"], values["level"])
        if "field" in values:
            values["field"] = tax.domain_path(values["field"], lang)
        if "region" in values:
            values["region"] = tax.region_name(values["region"], lang)
        if "scope" in values:
            values["scope"] = SCOPE_NAMES.get(lang, SCOPE_NAMES["en"]).get(
                values["scope"], values["scope"]
            )
        if "why" in values:
            values["why"] = table["why_" + values["why"]]
        if "causes" in values:
            causes = [table["cause_" + k].format(n=n) for k, n in values["causes"]]
            values["causes"] = table["sep"].join(causes)
        return table[self.key].format(**values)


def written(reasons: Sequence[Reason], tax: Taxonomy) -> dict[str, str]:
    """Reasons joined into one text per language: ``{"en": ..., "zh": ...}``."""
    out = {}
    for lang in LANGUAGES:
        table = PHRASES.get(lang, PHRASES["en"])
        out[lang] = table["sep"].join(r.text(lang, tax) for r in reasons)
    return out


# -- who may take a pair -------------------------------------------------------------------
def required_level(
    need: Any, tech: Any, tax: Taxonomy, rules: RoutingRules
) -> tuple[str, list[Reason]]:
    """The lowest certificate level allowed to handle this pair, and why."""
    level, why = "beginner", []
    if tax.country_of(need.home_region) != tax.country_of(tech.region):
        level = rules.cross_border_min_level
        why.append(Reason("cross_border", {"level": level}))
    budget = (need.budget_max or need.budget_min or 0.0) * TO_CNY.get(need.currency, 1.0)
    if (
        budget > rules.large_budget_cny
        and LEVEL_RANK[rules.large_budget_min_level] >= LEVEL_RANK[level]
    ):
        level = rules.large_budget_min_level
        why.append(Reason("large_budget", {"limit": rules.large_budget_cny, "level": level}))
    return level, why


def lapsed(broker: Any, today: date) -> str | None:
    """``suspended`` or ``expired`` when the broker may not hold matches today, else None."""
    if broker.suspended:
        return "suspended"
    if broker.valid_until < today:
        return "expired"
    return None


def _covers_domain(broker: Any, codes: Sequence[str], tax: Taxonomy) -> str | None:
    for code in codes:
        for ancestor in tax.ancestors(code):
            if ancestor in broker.domains:
                return ancestor
    return None


def _covers_region(broker: Any, region: str, tax: Taxonomy) -> str | None:
    return next((area for area in broker.regions if tax.region_in(region, area)), None)


@dataclass(frozen=True)
class Verdict:
    """Whether a broker may take a pair: a fit score and reasons, or the cause of refusal."""

    fit: float = 0.0
    reasons: tuple[Reason, ...] = ()
    refused: str | None = None  # lapsed | level | capacity | field


def assess(
    broker: Any, need: Any, tech: Any, *, today: date, tax: Taxonomy, rules: RoutingRules, load: int
) -> Verdict:
    """May the broker receive this pair, given their current load? Fit first, load second."""
    if lapsed(broker, today):
        return Verdict(refused="lapsed")
    level, level_why = required_level(need, tech, tax, rules)
    if LEVEL_RANK[broker.level] < LEVEL_RANK[level]:
        return Verdict(refused="level")
    domain = _covers_domain(broker, list(need.domains) + list(tech.domains), tax)
    if domain is None:
        return Verdict(refused="field")
    if load >= broker.capacity:
        return Verdict(refused="capacity")
    region = _covers_region(broker, need.home_region, tax) or _covers_region(
        broker, tech.region, tax
    )
    reasons = [
        Reason(
            "certificate",
            {
                "certificate_no": broker.certificate_no,
                "valid_until": broker.valid_until.isoformat(),
            },
        ),
        Reason("level", {"level": broker.level}),
        *level_why,
        Reason("field", {"field": domain}),
    ]
    fit = 2.0 if domain in need.domains or domain in tech.domains else 1.0
    if region is not None:
        reasons.append(Reason("region", {"region": region}))
        fit += 1.0
    reasons.append(Reason("workload", {"load": load, "capacity": broker.capacity}))
    # Specialisation first, then the lighter workload.
    return Verdict(fit=fit - load / max(broker.capacity, 1), reasons=tuple(reasons))


def in_scope(need: Any, tech: Any, tax: Taxonomy) -> bool:
    """A local or national need is only routed technologies from its own country."""
    if need.region_scope not in DOMESTIC_SCOPES:
        return True
    return tax.country_of(need.home_region) == tax.country_of(tech.region)


@dataclass
class Assignment:
    """A match and the broker chosen for it, with the reasons."""

    match: Match
    broker: Any
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class Plan:
    """The outcome of routing one need: assignments, or why there are none."""

    assignments: list[Assignment]
    state: RoutingState
    reason: list[Reason]


def plan(
    need: Any,
    matches: Sequence[Match],
    technologies: Mapping[int, Any],
    brokers: Sequence[Any],
    loads: Mapping[int, int],
    *,
    active: frozenset[int] = frozenset(),
    today: date,
    tax: Taxonomy,
    rules: RoutingRules,
) -> Plan:
    """Route a need's best matches, each to the best eligible broker.

    Args:
        matches: the need's ranked matches, best first.
        technologies: the matched technologies by id.
        brokers: every broker (lapsed ones are refused here).
        loads: each broker's open deals plus waiting items before this pass; the plan adds
            what it assigns as it goes, so one pass never counts an item twice.
        active: technologies already in some broker's inbox for this need (a pair is routed
            once and keeps its broker).
    """
    wanted = [m for m in matches if m.technology_id in technologies]
    good = [m for m in wanted if m.score >= rules.min_score]
    if not good:
        return Plan([], RoutingState.unrouted, [Reason("no_match", {"min_score": rules.min_score})])
    fitting = [m for m in good if in_scope(need, technologies[m.technology_id], tax)]
    if not fitting:
        return Plan(
            [], RoutingState.unrouted, [Reason("out_of_scope", {"scope": need.region_scope})]
        )
    top = fitting[: rules.matches_per_need]
    todo = [m for m in top if m.technology_id not in active]
    if not todo:
        return Plan([], RoutingState.routed, [Reason("routed", {"n": len(top)})])
    if not brokers:
        return Plan([], RoutingState.unrouted, [Reason("no_brokers")])
    load = dict(loads)
    assignments: list[Assignment] = []
    refusals: Counter[str] = Counter()
    for match in todo:
        tech = technologies[match.technology_id]
        best: tuple[float, Any, Verdict] | None = None
        causes: Counter[str] = Counter()
        for broker in brokers:
            verdict = assess(
                broker, need, tech, today=today, tax=tax, rules=rules, load=load.get(broker.id, 0)
            )
            if verdict.refused:
                causes[verdict.refused] += 1
            elif best is None or verdict.fit > best[0]:
                best = (verdict.fit, broker, verdict)
        if best is None:
            refusals = refusals or causes
            continue
        _, broker, verdict = best
        load[broker.id] = load.get(broker.id, 0) + 1
        assignments.append(Assignment(match, broker, list(verdict.reasons)))
    if assignments or active:
        n = len(assignments) + len(active & {m.technology_id for m in top})
        return Plan(assignments, RoutingState.routed, [Reason("routed", {"n": n})])
    order = ("capacity", "level", "field", "lapsed")
    causes_list = [(k, refusals[k]) for k in order if refusals[k]]
    return Plan([], RoutingState.unrouted, [Reason("no_broker", {"causes": causes_list})])
