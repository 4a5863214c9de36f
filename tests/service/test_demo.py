"""The shipped demo data: complete, valid, and matched well by the engine."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

from matcher.config import REPO_DATA_DIR
from matcher.engine import Engine
from matcher.ingest import read_file
from matcher.taxonomy import load_taxonomy

DEMO = REPO_DATA_DIR / "demo"
FOREIGN = {"GB", "DE", "CH", "NL", "BE", "DK", "IL", "US"}


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DEMO / name).read_text(encoding="utf-8").splitlines()]


def test_demo_files_are_valid_and_cover_the_brief() -> None:
    tax = load_taxonomy()
    for kind in ("technologies", "needs", "brokers"):
        batch = read_file(DEMO / f"{kind}.jsonl", kind, tax)
        assert batch.errors == [], batch.errors[:3]
    techs, needs, brokers = (
        _rows("technologies.jsonl"),
        _rows("needs.jsonl"),
        _rows("brokers.jsonl"),
    )
    assert len(techs) >= 300 and len(needs) >= 80 and len(brokers) >= 12
    assert set(Counter(t["trl"] for t in techs)) == set(range(1, 10))
    countries = {tax.country_of(t["region"]) for t in techs}
    assert "CN" in countries and countries >= FOREIGN
    assert {d.split(".")[0] for t in techs for d in t["domains"]} == {f"0{i}" for i in range(1, 9)}
    assert Counter(b["level"] for b in brokers).keys() == {"beginner", "intermediate", "advanced"}
    expired = [b for b in brokers if date.fromisoformat(b["valid_until"]) < date(2026, 1, 1)]
    assert len(expired) == 1
    intended = Path(DEMO / "intended.tsv").read_text(encoding="utf-8").splitlines()[1:]
    need_ids, tech_ids = {n["id"] for n in needs}, {t["id"] for t in techs}
    pairs = [line.split("\t") for line in intended]
    assert {n for n, _, _ in pairs} == need_ids
    assert all(t in tech_ids for _, t, _ in pairs)


def test_engine_ranks_intended_answers_near_the_top(demo_engine: Engine) -> None:
    intended = demo_engine.demo_intended()
    ranks = []
    for need_ref, answers in intended.items():
        best = [t for t, grade in answers.items() if grade == 2]
        found = [m.technology_ref for m in demo_engine.match_need(need_ref, top=10, persist=False)]
        hit = [found.index(t) + 1 for t in best if t in found]
        ranks.append(min(hit) if hit else None)
    at1 = sum(r == 1 for r in ranks) / len(ranks)
    at5 = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
    at10 = sum(r is not None for r in ranks) / len(ranks)
    misses = [n for n, r in zip(intended, ranks, strict=True) if r is None]
    # Measured on the shipped data: see benchmarks/RESULTS.md (demo section).
    assert at10 >= 0.97, misses
    assert at5 >= 0.95
    assert at1 >= 0.85


def test_technology_to_needs_direction_on_demo(demo_engine: Engine) -> None:
    intended = demo_engine.demo_intended()
    need_ref, answers = next(iter(intended.items()))
    tech_ref = next(t for t, g in answers.items() if g == 2)
    found = [m.need_ref for m in demo_engine.match_technology(tech_ref, top=5)]
    assert need_ref in found
