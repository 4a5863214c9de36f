"""Reference data: domain taxonomy (with what each field covers), readiness levels, regions,
CPC crosswalk (loaded from data/)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from matcher.config import get_settings


class DomainRelation(StrEnum):
    same = "same"
    parent = "parent"  # one code is an ancestor of the other
    sibling = "sibling"  # same parent field
    unrelated = "unrelated"


@dataclass(frozen=True)
class Domain:
    code: str
    name_en: str
    name_zh: str
    parent: str | None
    # What the field covers, item by item (``domain_scopes.json``): read to infer codes.
    scope_en: tuple[str, ...] = ()
    scope_zh: tuple[str, ...] = ()

    def name(self, lang: str = "en") -> str:
        """Name in the reader's language (``en`` or ``zh``)."""
        return self.name_zh if lang == "zh" else self.name_en

    def scope(self, lang: str = "en") -> tuple[str, ...]:
        """What the field covers, in ``en`` or ``zh`` (empty when not described)."""
        return self.scope_zh if lang == "zh" else self.scope_en


@dataclass(frozen=True)
class Region:
    code: str
    level: str
    parent: str | None
    name_en: str
    name_zh: str
    lat: float
    lon: float

    def name(self, lang: str = "en") -> str:
        """Name in the reader's language (``en`` or ``zh``)."""
        return self.name_zh if lang == "zh" else self.name_en


@dataclass(frozen=True)
class Grouping:
    code: str
    name_en: str
    name_zh: str
    members: frozenset[str]

    def name(self, lang: str = "en") -> str:
        """Name in the reader's language (``en`` or ``zh``)."""
        return self.name_zh if lang == "zh" else self.name_en


@dataclass(frozen=True)
class ReadinessLevel:
    trl: int
    name_en: str
    name_zh: str
    definition_en: str
    definition_zh: str


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


class Taxonomy:
    """All reference data in memory, with the relations the ranking layer needs."""

    def __init__(self, data_dir: Path) -> None:
        base = data_dir / "taxonomy"
        scopes = base / "domain_scopes.json"
        scope = {s["code"]: s for s in (_load(scopes)["scopes"] if scopes.exists() else [])}
        self.domains: dict[str, Domain] = {
            d["code"]: Domain(
                d["code"],
                d["name_en"],
                d["name_zh"],
                d.get("parent"),
                tuple(scope.get(d["code"], {}).get("en", ())),
                tuple(scope.get(d["code"], {}).get("zh", ())),
            )
            for d in _load(base / "domains.json")["domains"]
        }
        self.readiness: dict[int, ReadinessLevel] = {
            lv["trl"]: ReadinessLevel(
                lv["trl"], lv["name_en"], lv["name_zh"], lv["definition_en"], lv["definition_zh"]
            )
            for lv in _load(base / "readiness.json")["levels"]
        }
        regions = _load(base / "regions.json")
        self.regions: dict[str, Region] = {
            r["code"]: Region(
                r["code"],
                r["level"],
                r.get("parent"),
                r["name_en"],
                r["name_zh"],
                float(r["lat"]),
                float(r["lon"]),
            )
            for r in regions["regions"]
        }
        self.groupings: dict[str, Grouping] = {
            g["code"]: Grouping(g["code"], g["name_en"], g["name_zh"], frozenset(g["members"]))
            for g in regions["groupings"]
        }
        # Memo tables: the ranking layer asks the same questions for many candidates.
        self._groupings_of: dict[str, frozenset[str]] = {}
        self._paths: dict[tuple[str, str], str] = {}
        crosswalk = _load(base / "cpc_crosswalk.json")["classes"]
        self.cpc: dict[str, list[str]] = {
            c["cpc"].upper().replace(" ", ""): list(c["domains"]) for c in crosswalk
        }

    # -- domains -------------------------------------------------------------------------
    def ancestors(self, code: str) -> list[str]:
        """The code and its ancestors, nearest first."""
        chain: list[str] = []
        current: str | None = code
        while current is not None and current in self.domains:
            chain.append(current)
            current = self.domains[current].parent
        return chain

    def domain_relation(self, a: str, b: str) -> DomainRelation:
        """How two domain codes relate in the hierarchy."""
        if a == b:
            return DomainRelation.same
        chain_a, chain_b = self.ancestors(a), self.ancestors(b)
        if a in chain_b or b in chain_a:
            return DomainRelation.parent
        parent_a = self.domains[a].parent if a in self.domains else None
        parent_b = self.domains[b].parent if b in self.domains else None
        if parent_a is not None and parent_a == parent_b:
            return DomainRelation.sibling
        return DomainRelation.unrelated

    def domain_path(self, code: str, lang: str = "en") -> str:
        """Readable path, e.g. ``new materials › functional coatings and thin films``."""
        key = (code, lang)
        if key not in self._paths:
            names = [self.domains[c].name(lang) for c in reversed(self.ancestors(code))]
            text = " › ".join(names)
            self._paths[key] = text.lower() if lang == "en" else text
        return self._paths[key]

    def domains_for_cpc(self, cpc: str) -> list[str]:
        """Domain codes for a CPC symbol by longest matching prefix (subclass, class, section)."""
        symbol = cpc.upper().replace(" ", "")
        for length in range(min(len(symbol), 4), 0, -1):
            hit = self.cpc.get(symbol[:length])
            if hit:
                return hit
        return []

    # -- regions -------------------------------------------------------------------------
    def is_region(self, code: str) -> bool:
        """Whether the code is a known ISO 3166 country or subdivision."""
        return code in self.regions

    def country_of(self, code: str) -> str:
        """The ISO 3166-1 country code of a country or subdivision code."""
        region = self.regions.get(code)
        if region is not None and region.parent:
            return region.parent
        return code.split("-")[0]

    def groupings_of(self, code: str) -> frozenset[str]:
        """Codes of the named groupings that contain the region or its country (memoised)."""
        found = self._groupings_of.get(code)
        if found is None:
            country = self.country_of(code)
            found = frozenset(
                g.code for g in self.groupings.values() if code in g.members or country in g.members
            )
            self._groupings_of[code] = found
        return found

    def region_in(self, code: str, area: str) -> bool:
        """Whether ``code`` lies in ``area`` (a country, subdivision or grouping code)."""
        if area in self.groupings:
            return area in self.groupings_of(code)
        return code == area or self.country_of(code) == area

    def distance_km(self, a: str, b: str) -> float | None:
        """Great-circle distance between two regions' centroids, or None if unknown."""
        ra, rb = self.regions.get(a), self.regions.get(b)
        if ra is None or rb is None:
            return None
        lat1, lon1, lat2, lon2 = map(math.radians, (ra.lat, ra.lon, rb.lat, rb.lon))
        h = (
            math.sin((lat2 - lat1) / 2) ** 2
            + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        )
        return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))

    def region_name(self, code: str, lang: str = "en") -> str:
        """Name of a region or grouping, falling back to the code."""
        found = self.regions.get(code) or self.groupings.get(code)
        return found.name(lang) if found else code


@lru_cache(maxsize=4)
def load_taxonomy(data_dir: Path | None = None) -> Taxonomy:
    """The reference data, loaded once per data directory."""
    return Taxonomy(data_dir or get_settings().data_dir)
