"""The ranking layer: features of a (need, technology) pair, weighted score, explanation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from matcher.config import RankWeights
from matcher.domain import Components, Side
from matcher.phrases import join, phrase
from matcher.taxonomy import DomainRelation, Taxonomy

DOMAIN_SCORE = {
    DomainRelation.same: 1.0,
    DomainRelation.parent: 0.75,
    DomainRelation.sibling: 0.5,
    DomainRelation.unrelated: 0.0,
}
UNKNOWN = 0.5  # a feature that cannot be judged neither helps nor hurts much


class NeedLike(Protocol):
    domains: list[str]
    trl_min: int | None
    trl_max: int | None
    trl_hard: bool
    region_scope: str
    home_region: str | None
    region_hard: bool


class TechnologyLike(Protocol):
    domains: list[str]
    trl: int
    region: str


@dataclass
class Query:
    """What the demand side asks for: a stored need or an ad-hoc search."""

    domains: list[str]
    trl_min: int | None = None
    trl_max: int | None = None
    trl_hard: bool = False
    region_scope: str = "international"
    home_region: str | None = None
    region_hard: bool = False


@dataclass(frozen=True)
class Feature:
    """One feature's value and the phrase that explains it."""

    value: float
    phrase: str


@dataclass(frozen=True)
class RegionFeature(Feature):
    """The region feature, and whether the technology lies in the scope the need asked for
    (``HARD_ALLOWED``: a local need's province or compact grouping, a national need's country;
    an international need's, or one without a home region, everywhere)."""

    in_scope: bool = True


def domain_feature(
    need: NeedLike, tech: TechnologyLike, tax: Taxonomy, lang: str = "en"
) -> Feature:
    """Best taxonomy relation between any of the need's and the technology's domains."""
    if not need.domains or not tech.domains:
        return Feature(UNKNOWN, phrase(lang, "domain.none"))
    best: tuple[float, str, str, DomainRelation] | None = None
    for a in need.domains:
        for b in tech.domains:
            relation = tax.domain_relation(a, b)
            value = DOMAIN_SCORE[relation]
            if best is None or value > best[0]:
                best = (value, a, b, relation)
    assert best is not None
    value, a, b, relation = best
    shown = b
    if relation is DomainRelation.parent:
        shown = a if len(tax.ancestors(a)) > len(tax.ancestors(b)) else b
    path = tax.domain_path(shown, lang)
    return Feature(value, phrase(lang, f"domain.{relation.value}", path=path))


def readiness_feature(need: NeedLike, tech: TechnologyLike, lang: str = "en") -> Feature:
    """Technology TRL against the window the enterprise can absorb."""
    low, high, trl = need.trl_min, need.trl_max, tech.trl
    if low is None and high is None:
        return Feature(1.0, phrase(lang, "trl.plain", trl=trl))
    if low is not None and trl < low:
        # Each level short of what the enterprise can absorb costs a quarter.
        value = max(0.0, 1.0 - 0.25 * (low - trl))
        return Feature(value, phrase(lang, "trl.below", trl=trl, low=low))
    if high is not None and trl > high:
        # Too mature is a smaller problem than too early: the work is done, only the fit suffers.
        value = max(0.0, 1.0 - 0.15 * (trl - high))
        return Feature(value, phrase(lang, "trl.above", trl=trl, high=high))
    if low is not None and high is not None:
        return Feature(1.0, phrase(lang, "trl.window", trl=trl, low=low, high=high))
    if low is not None:
        return Feature(1.0, phrase(lang, "trl.min", trl=trl, low=low))
    return Feature(1.0, phrase(lang, "trl.max", trl=trl, high=high))


def _relation(need: NeedLike, tech: TechnologyLike, tax: Taxonomy) -> tuple[str, float | None]:
    """Classify where the technology is, seen from the need's home region."""
    home, where = need.home_region, tech.region
    assert home is not None
    distance = tax.distance_km(home, where)
    if home == where:
        return "same_subdivision", distance
    shared = tax.groupings_of(home) & tax.groupings_of(where)
    same_country = tax.country_of(home) == tax.country_of(where)
    # Sub-national clusters (Yangtze River Delta, New England) are "local" when they are
    # compact; broad statistical regions (all of eastern China) are not. Country-level blocs
    # (EU, DACH) make a foreign partner "near" but not local.
    compact = distance is not None and distance <= LOCAL_RADIUS_KM
    if same_country and compact and any(_is_subnational(tax, g) for g in shared):
        return "same_grouping", distance
    if same_country:
        return "same_country", distance
    if shared and distance is not None and distance <= NEAR_RADIUS_KM:
        return "near_abroad", distance
    return "abroad", distance


LOCAL_RADIUS_KM = 800.0
# Blocs count as "near" only for neighbours: G20 or OECD membership says nothing about distance.
NEAR_RADIUS_KM = 3000.0


def _is_subnational(tax: Taxonomy, grouping: str) -> bool:
    return all("-" in member for member in tax.groupings[grouping].members)


def _closest_grouping(tax: Taxonomy, a: str, b: str) -> str:
    """The most specific grouping two regions share: sub-national first, then the smallest."""
    shared = tax.groupings_of(a) & tax.groupings_of(b)
    # Nearby partners get the cluster they share; foreign ones the bloc (EU rather than G20).
    return min(
        shared,
        key=lambda g: (not _is_subnational(tax, g), len(tax.groupings[g].members), g),
    )


# Score of each relation under each scope: local wants neighbours, international is open.
REGION_SCORE = {
    "local": {
        "same_subdivision": 1.0,
        "same_grouping": 0.85,
        "same_country": 0.45,
        "near_abroad": 0.2,
        "abroad": 0.1,
    },
    "national": {
        "same_subdivision": 1.0,
        "same_grouping": 1.0,
        "same_country": 0.9,
        "near_abroad": 0.4,
        "abroad": 0.3,
    },
    "international": {
        "same_subdivision": 1.0,
        "same_grouping": 0.95,
        "same_country": 0.9,
        "near_abroad": 0.85,
        "abroad": 0.75,
    },
}
# Which relations a hard region filter lets through, per scope.
HARD_ALLOWED = {
    "local": {"same_subdivision", "same_grouping"},
    "national": {"same_subdivision", "same_grouping", "same_country"},
}


def region_feature(
    need: NeedLike,
    tech: TechnologyLike,
    tax: Taxonomy,
    scale_km: float = 1500.0,
    lang: str = "en",
    *,
    reader: str = "need",
) -> RegionFeature:
    """The need's region preference against where the technology is.

    The explanation names the other side's region: the technology's for a reader holding a need
    (``reader="need"``), the need's for one holding a technology (``reader="technology"``).
    """
    if not need.home_region or not tech.region:
        return RegionFeature(UNKNOWN, phrase(lang, "region.none"))
    relation, distance = _relation(need, tech, tax)
    allowed = HARD_ALLOWED.get(need.region_scope)
    in_scope = allowed is None or relation in allowed
    base = REGION_SCORE.get(need.region_scope, REGION_SCORE["international"])[relation]
    # Within a relation class, nearer is slightly better (up to 10% of the remaining gap).
    proximity = 1.0 / (1.0 + distance / scale_km) if distance is not None else 0.5
    value = base + (1.0 - base) * 0.1 * proximity if relation != "same_subdivision" else 1.0
    other = tech.region if reader == "need" else need.home_region
    name = tax.region_name(other, lang)
    grouping = ""
    if relation in ("same_grouping", "near_abroad"):
        grouping = tax.region_name(_closest_grouping(tax, need.home_region, tech.region), lang)
    text = phrase(lang, f"region.{relation}", name=name, grouping=grouping)
    if distance is not None and relation != "same_subdivision":
        km = int(round(distance, -1))
        text = phrase(lang, "region.where", relation=text, name=name, km=km)
    if not in_scope:
        outside = phrase(lang, f"region.outside.{need.region_scope}")
        text = phrase(lang, "join").join([text, outside])
    return RegionFeature(min(1.0, value), text, in_scope)


def has_hard_filters(need: NeedLike) -> bool:
    """Whether ``passes_hard_filters`` can turn any technology away for this need."""
    return bool(need.trl_hard or (need.region_hard and need.home_region))


def passes_hard_filters(need: NeedLike, tech: TechnologyLike, tax: Taxonomy) -> bool:
    """Whether a technology survives the need's hard readiness and region filters."""
    if need.trl_hard:
        if need.trl_min is not None and tech.trl < need.trl_min:
            return False
        if need.trl_max is not None and tech.trl > need.trl_max:
            return False
    if need.region_hard and need.home_region:
        allowed = HARD_ALLOWED.get(need.region_scope)
        if allowed is not None and _relation(need, tech, tax)[0] not in allowed:
            return False
    return True


@dataclass
class TextOffer:
    """A free-text technology offer searched against stored needs."""

    domains: list[str]
    trl: int | None = None
    region: str | None = None
    hard: bool = False

    def accepted_by(self, need: Any, tax: Taxonomy) -> bool:
        """Whether a need's hard filters (or all its windows, with ``hard``) let the offer in."""
        strict = Query(
            domains=list(need.domains),
            trl_min=need.trl_min,
            trl_max=need.trl_max,
            trl_hard=(need.trl_hard or self.hard) and self.trl is not None,
            region_scope=need.region_scope,
            home_region=need.home_region,
            region_hard=(need.region_hard or self.hard) and self.region is not None,
        )
        return passes_hard_filters(strict, self, tax)  # type: ignore[arg-type]


def passes(query: Any, row: Any, target: Side, tax: Taxonomy) -> bool:
    """Whether a candidate ``row`` of side ``target`` survives the query's hard filters (a need
    searching technologies), or the candidate need's own (a technology or an offer)."""
    if target is Side.technologies:
        return passes_hard_filters(query, row, tax)
    if isinstance(query, TextOffer):
        return query.accepted_by(row, tax)
    return passes_hard_filters(row, query, tax)


def semantic_feature(cosine: float) -> float:
    """Cosine similarity of unit vectors clipped to [0, 1]."""
    return min(1.0, max(0.0, cosine))


def lexical_feature(bm25: float, best_bm25: float) -> float:
    """BM25 relative to the best candidate's, with a soft floor so one hit is not everything."""
    if best_bm25 <= 0 or bm25 <= 0:
        return 0.0
    return min(1.0, math.sqrt(bm25 / best_bm25))


COMPONENTS = ("semantic", "lexical", "domain", "readiness", "region")


def normalised_weights(weights: RankWeights) -> tuple[float, ...]:
    """The weights in component order, scaled to sum to one."""
    raw = [getattr(weights, name) for name in COMPONENTS]
    total = sum(raw)
    if total <= 0:
        raise ValueError("ranking weights must not all be zero")
    return tuple(w / total for w in raw)


def combine(components: Components, weights: RankWeights, *, same_language: bool = True) -> float:
    """Weighted mean of the components: the score in [0, 1].

    A need and a technology written in different languages share no words, so for them the
    lexical component is missing rather than zero: the mean of the other four. In a pool that
    mixes languages it is missing for every candidate (``features.fixed_scores``): pass
    ``same_language=False`` for those too.
    """
    w = normalised_weights(weights)
    values = (getattr(components, name) for name in COMPONENTS)
    total = 0.0
    for v, weight in zip(values, w, strict=True):
        total = total + v * weight
    if not same_language and w[1] < 1.0:
        return (total - w[1] * components.lexical) / (1.0 - w[1])
    return total


def explain(phrases: Sequence[str], lang: str = "en") -> str:
    """Join the explanation phrases a broker reads into one line."""
    return join(lang, phrases)
