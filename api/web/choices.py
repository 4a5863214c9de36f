"""The choices of the forms from the reference data: fields, regions, readiness levels."""

from __future__ import annotations

from typing import Any

from api.web.i18n import t
from matcher.taxonomy import Taxonomy


def domain_groups(tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """Top-level fields with their sub-fields, for <optgroup>s."""
    groups = []
    for code, domain in tax.domains.items():
        if domain.parent is not None:
            continue
        children = [d for d in tax.domains.values() if d.parent == code]
        options = [(code, t(lang, "form.whole_field", name=domain.name(lang)))]
        options += [(d.code, f"{d.code} {d.name(lang)}") for d in children]
        groups.append({"label": f"{code} {domain.name(lang)}", "options": options})
    return groups


def region_groups(tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """Countries, then the subdivisions of each country that has some (CN and US first)."""
    countries = sorted(
        (r for r in tax.regions.values() if r.level == "country"), key=lambda r: r.name_en
    )
    groups = [
        {
            "label": t(lang, "region.countries"),
            "options": [(r.code, f"{r.name(lang)} ({r.code})") for r in countries],
        }
    ]
    parents = sorted(
        {r.parent for r in tax.regions.values() if r.level != "country" and r.parent},
        key=lambda c: (c not in ("CN", "US"), c != "CN", tax.region_name(c, "en")),
    )
    for parent in parents:
        subs = sorted(
            (r for r in tax.regions.values() if r.parent == parent), key=lambda r: r.name_en
        )
        groups.append(
            {
                "label": t(lang, "region.subdivisions", country=tax.region_name(parent, lang)),
                "options": [(r.code, f"{r.name(lang)} ({r.code})") for r in subs],
            }
        )
    return groups


def trl_levels(tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """TRL 1–9 with name and plain-language definition."""
    return [
        {
            "trl": lv.trl,
            "name": lv.name_zh if lang == "zh" else lv.name_en,
            "definition": lv.definition_zh if lang == "zh" else lv.definition_en,
        }
        for lv in sorted(tax.readiness.values(), key=lambda lv: lv.trl)
    ]
