"""Domain codes inferred from text, measured on the demo data with its codes hidden.

The demo set (``data/demo``: 300 technologies, 80 needs, English and Chinese) is imported into a
scratch ``MATCHER_HOME`` through the real engine with its codes, as a catalogue whose codes a
person set. Every record's text is then given to the engine's inference
(``Catalog.inferrer.infer``) with the record itself left out of its neighbours: leave-one-out,
each record inferred from the labels and the 379 others. Two settings:

- ``labels only``: no neighbour votes, as in an empty catalogue;
- ``labels + neighbours``: what a record saved into the demo catalogue gets.

The Chinese translations (``data/demo/parallel``, versions A and B of 180 technologies and 80
needs) and the English originals of the Chinese records are inferred too, each with its own
record left out: the same records in the other language.

Top-level accuracy: the inferred field is one of the record's fields (a record coded in two
fields counts as right with either). Sub-field accuracy: the inferred sub-field is one of its
codes. Goals (issue 14): top-level >= 0.9, sub-field >= 0.7.

    python -m benchmarks.domains [--json OUT] [--no-parallel]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from matcher.config import REPO_DATA_DIR, Settings
from matcher.domain import Side
from matcher.engine import Engine
from matcher.infer import DomainInferrer, Inference, InferenceSettings
from matcher.ingest import detect_language
from matcher.store import repo

DEMO = REPO_DATA_DIR / "demo"
GOALS = {"top_level": 0.9, "sub_field": 0.7}


@dataclass(frozen=True)
class Case:
    """One text to infer, with the codes a person gave its record."""

    side: Side
    ref: str
    language: str
    text: str
    gold: tuple[str, ...]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _text(side: Side, record: dict[str, Any]) -> str:
    """The text the engine embeds for a record of these fields (``repo.text_of``)."""
    fields = SimpleNamespace(
        title=record["title"],
        description=record["description"],
        keywords=record.get("keywords") or [],
    )
    return repo.text_of(side, fields)


def demo_cases(directory: Path = DEMO) -> list[Case]:
    """Every demo technology and need as it is shipped."""
    out = []
    for side in Side:
        for record in _jsonl(directory / f"{side.value}.jsonl"):
            text = _text(side, record)
            language = record.get("language") or detect_language(text)
            out.append(Case(side, record["id"], language, text, tuple(record["domains"])))
    return out


def parallel_cases(directory: Path = DEMO) -> list[Case]:
    """The other-language versions of demo records (``parallel/``), with their record's codes."""
    gold = {(c.side, c.ref): c.gold for c in demo_cases(directory)}
    out = []
    for side in Side:
        for version in ("zh.A", "zh.B", "en"):
            path = directory / "parallel" / f"{side.value}.{version}.jsonl"
            for record in _jsonl(path) if path.exists() else []:
                text = _text(side, record)
                language = version.split(".")[0]
                out.append(Case(side, record["id"], language, text, gold[(side, record["id"])]))
    return out


def infer(inferrer: DomainInferrer, cases: Sequence[Case]) -> list[Inference]:
    """Each case inferred with its own record left out of the neighbours."""
    return inferrer.infer(
        [c.text for c in cases],
        [c.language for c in cases],
        own=[(c.side, c.ref) for c in cases],
    )


def field_of(code: str) -> str:
    """The top-level field of a code (``04.06`` -> ``04``)."""
    return code.split(".")[0]


def score(cases: Sequence[Case], found: Sequence[Inference]) -> dict[str, Any]:
    """Accuracy overall, per language and per side; the confusion between fields."""
    groups: dict[str, list[tuple[bool, bool]]] = {}
    confusion: Counter[tuple[str, str]] = Counter()
    sure = []
    for case, inference in zip(cases, found, strict=True):
        fields = [field_of(c) for c in case.gold]
        top = inference.field.code in fields
        sub = inference.subfield.code in case.gold
        for key in ("all", case.language, case.side.value):
            groups.setdefault(key, []).append((top, sub))
        confusion[(inference.field.code if top else fields[0], inference.field.code)] += 1
        sure.append((inference.confidence, sub))
    out: dict[str, Any] = {
        key: {
            "records": len(hits),
            "top_level": round(sum(t for t, _ in hits) / len(hits), 3),
            "sub_field": round(sum(s for _, s in hits) / len(hits), 3),
        }
        for key, hits in groups.items()
    }
    confident = [s for c, s in sure if c >= 0.5]
    out["confident"] = {
        "share": round(len(confident) / len(sure), 3),
        "sub_field": round(sum(confident) / len(confident), 3) if confident else None,
    }
    out["confusion"] = {f"{a}->{b}": n for (a, b), n in sorted(confusion.items())}
    return out


def run_domains(*, parallel: bool = True) -> dict[str, Any]:
    """Import the demo into a scratch home, infer every record's codes, and score them."""
    cases = demo_cases()
    others = parallel_cases() if parallel else []
    report: dict[str, Any] = {"goals": GOALS}
    with tempfile.TemporaryDirectory(prefix="techmatch-domains-") as home:
        engine = Engine(Settings(home=Path(home), progress=False))
        try:
            started = time.perf_counter()
            engine.load_demo()
            report["import_s"] = round(time.perf_counter() - started, 1)
            report["primary"] = engine.settings.model
            report["multilingual"] = engine.settings.multilingual_model
            with_neighbours = engine.catalog.inferrer
            labels_only = DomainInferrer(engine.catalog, InferenceSettings(neighbour_weight=0.0))
            settings = (("labels only", labels_only), ("labels + neighbours", with_neighbours))
            for name, inferrer in settings:
                started = time.perf_counter()
                found = infer(inferrer, cases)
                elapsed = time.perf_counter() - started
                report[f"demo, {name}"] = score(cases, found)
                report[f"demo, {name}"]["ms_per_record"] = round(1000 * elapsed / len(cases), 1)
                if others:
                    report[f"parallel, {name}"] = score(others, infer(inferrer, others))
        finally:
            engine.close()
    return report


def table(report: dict[str, Any]) -> str:
    """The accuracies as a markdown table."""
    rows = [
        "| set | records | top-level | sub-field |",
        "|---|---:|---:|---:|",
    ]
    for name, result in report.items():
        if not isinstance(result, dict) or "all" not in result:
            continue
        for key in ("all", "en", "zh", "technologies", "needs"):
            if key in result:
                part = result[key]
                label = name if key == "all" else f"  {key}"
                rows.append(
                    f"| {label} | {part['records']} | {part['top_level']:.3f} | "
                    f"{part['sub_field']:.3f} |"
                )
    return "\n".join(rows)


def confusion_table(result: dict[str, Any]) -> str:
    """Fields given (rows) against fields inferred (columns), as a markdown table."""
    pairs = {tuple(k.split("->")): n for k, n in result["confusion"].items()}
    fields = sorted({a for a, _ in pairs} | {b for _, b in pairs})
    rows = [
        "| given \\ inferred | " + " | ".join(fields) + " | right |",
        "|---|" + "---:|" * (len(fields) + 1),
    ]
    for a in fields:
        cells = [pairs.get((a, b), 0) for b in fields]
        total = sum(cells)
        right = f"{pairs.get((a, a), 0) / total:.2f}" if total else "-"
        shown = [str(n) if n else "." for n in cells]
        rows.append(f"| {a} | " + " | ".join(shown) + f" | {right} |")
    return "\n".join(rows)


def summary(report: dict[str, Any]) -> str:
    """Whether the goals are met, in one line each."""
    main = report["demo, labels + neighbours"]["all"]
    lines = []
    for key, goal in GOALS.items():
        verdict = "met" if main[key] >= goal else "NOT met"
        lines.append(f"- {key.replace('_', ' ')}: {main[key]:.3f} (goal {goal}): {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.domains", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument(
        "--no-parallel", action="store_true", help="leave out the other-language versions"
    )
    args = parser.parse_args(argv)
    report = run_domains(parallel=not args.no_parallel)
    print(table(report))
    print()
    print("Fields given against inferred (demo, labels + neighbours):")
    print()
    print(confusion_table(report["demo, labels + neighbours"]))
    print()
    print(summary(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
