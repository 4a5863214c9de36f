"""A small hand-made catalogue for engine tests (real text, real model)."""

from __future__ import annotations

from typing import Any

TECHNOLOGIES: list[dict[str, Any]] = [
    {
        "id": "T-1",
        "title": "Perovskite solar cell with self-healing encapsulation",
        "description": "A tandem perovskite-silicon solar cell whose polymer encapsulant heals "
        "micro-cracks, keeping 95% efficiency after 1,000 hours of damp heat.",
        "owner": "Nanjing University",
        "domains": ["06.01"],
        "trl": 5,
        "region": "CN-JS",
        "keywords": ["perovskite", "photovoltaic"],
    },
    {
        "id": "T-2",
        "title": "Anti-corrosion graphene coating for offshore steel",
        "description": "A waterborne epoxy coating filled with functionalised graphene flakes that "
        "blocks chloride ingress and protects offshore steel structures for 20 years.",
        "owner": "Ningbo Institute of Materials Technology",
        "domains": ["04.06"],
        "trl": 6,
        "region": "CN-ZJ",
        "keywords": ["coating", "corrosion", "graphene"],
    },
    {
        "id": "T-3",
        "title": "Deep-learning defect detection for printed circuit boards",
        "description": "A convolutional network inspects PCB images on the production line and "
        "finds solder bridges, missing parts and scratches at 60 boards per minute.",
        "owner": "Technion",
        "domains": ["01.09"],
        "trl": 7,
        "region": "IL-HA",
        "keywords": ["machine vision", "inspection"],
    },
    {
        "id": "T-4",
        "title": "Membrane bioreactor for textile dyeing wastewater",
        "description": "A ceramic membrane bioreactor removes colour and COD from dyeing "
        "wastewater so that 70% of the water can be reused in the dye house.",
        "owner": "Tongji University",
        "domains": ["07.01"],
        "trl": 8,
        "region": "CN-SH",
        "keywords": ["wastewater", "membrane"],
    },
    {
        "id": "T-5",
        "title": "Solid-state sodium-ion battery for grid storage",
        "description": "A sodium-ion cell with a ceramic solid electrolyte, no cobalt or lithium, "
        "4,000 cycles at 80% capacity retention, aimed at stationary energy storage.",
        "owner": "ETH Zurich",
        "domains": ["06.03"],
        "trl": 4,
        "region": "CH-ZH",
        "keywords": ["battery", "sodium-ion"],
    },
    {
        "id": "T-6",
        "title": "Collaborative robot arm with force-controlled polishing",
        "description": "A six-axis collaborative robot that polishes castings with constant "
        "contact force, learning the path from one demonstration by the operator.",
        "owner": "RWTH Aachen",
        "domains": ["08.05"],
        "trl": 6,
        "region": "DE-NW",
        "keywords": ["robot", "polishing"],
    },
]

NEEDS: list[dict[str, Any]] = [
    {
        "id": "N-1",
        "enterprise": "Zhoushan Marine Engineering Co.",
        "title": "Protect steel jackets of offshore platforms from seawater corrosion",
        "description": "Our offshore platforms rust within five years; we need a long-life "
        "protective paint for steel in the splash zone that is easy to apply.",
        "domains": ["04.06"],
        "trl_min": 5,
        "region_scope": "national",
        "home_region": "CN-ZJ",
    },
    {
        "id": "N-2",
        "enterprise": "Shaoxing Dyeing Group",
        "title": "Reuse water from our dye house",
        "description": "We discharge 3,000 tonnes of coloured wastewater a day and want to treat "
        "and recycle most of it back into dyeing.",
        "domains": ["07.01"],
        "trl_min": 7,
        "region_scope": "local",
        "home_region": "CN-ZJ",
    },
]
