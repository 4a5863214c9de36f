"""Read and validate import files (JSONL or CSV) of technologies, needs and brokers."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from matcher.domain import BrokerIn, NeedIn, TechnologyIn
from matcher.errors import InvalidInputError
from matcher.taxonomy import Taxonomy

Kind = Literal["technologies", "needs", "brokers"]
MODELS: dict[str, type[BaseModel]] = {
    "technologies": TechnologyIn,
    "needs": NeedIn,
    "brokers": BrokerIn,
}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class ImportFormatError(InvalidInputError):
    """The file cannot be read at all (unknown extension, not UTF-8, no header)."""


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportBatch:
    """Validated records with their line numbers, and the rows that failed."""

    kind: str
    records: list[tuple[int, BaseModel]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def detect_language(text: str) -> str:
    """``zh`` when a notable share of the letters are CJK ideographs, else ``en``."""
    letters = sum(ch.isalpha() for ch in text) or 1
    return "zh" if len(_CJK.findall(text)) / letters > 0.2 else "en"


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield (line number, raw row) pairs; a string row is a parse error message."""
    suffix = path.suffix.lower()
    if suffix not in {".jsonl", ".ndjson", ".json", ".csv"}:
        raise ImportFormatError(
            f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl or .csv"
        )
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise ImportFormatError(f"file not found: {path}") from exc
    with handle:
        if suffix in {".jsonl", ".ndjson", ".json"}:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, f"not valid JSON ({exc.msg} at column {exc.colno})"
                    continue
                yield number, value if isinstance(value, dict) else "expected a JSON object"
        else:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise ImportFormatError(f"{path}: the CSV file has no header line")
            for row in reader:
                if None in row:
                    yield reader.line_num, "more cells than header columns"
                    continue
                # Empty cells mean "not given", so defaults apply.
                yield reader.line_num, {k.strip(): v for k, v in row.items() if v and v.strip()}


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def check_references(record: BaseModel, taxonomy: Taxonomy) -> list[str]:
    """Problems with codes that must exist in the reference data (domains, regions)."""
    problems: list[str] = []
    if isinstance(record, TechnologyIn) and not record.domains and record.cpc:
        inferred = sorted({d for c in record.cpc for d in taxonomy.domains_for_cpc(c)})
        record.domains = inferred
    domains = getattr(record, "domains", [])
    unknown = [d for d in domains if d not in taxonomy.domains]
    if unknown:
        problems.append(
            f"domains: unknown domain code(s) {', '.join(unknown)} (see data/taxonomy/domains.json)"
        )
    if isinstance(record, TechnologyIn) and not domains:
        problems.append("domains: give at least one domain code or a CPC class")
    for attr in ("region", "home_region"):
        code = getattr(record, attr, None)
        if code is not None and not taxonomy.is_region(code):
            problems.append(
                f"{attr}: unknown region code {code!r}; "
                "use ISO 3166 codes such as CN-SH, DE or US-CA"
            )
    if isinstance(record, BrokerIn):
        bad = [
            r for r in record.regions if not taxonomy.is_region(r) and r not in taxonomy.groupings
        ]
        if bad:
            problems.append(f"regions: unknown region or grouping code(s) {', '.join(bad)}")
    return problems


def validate_record(kind: str, raw: dict[str, Any], taxonomy: Taxonomy) -> BaseModel:
    """Validate one raw record; raises ValueError with every problem found."""
    model = MODELS[kind]
    try:
        record = model.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_format_error(exc)) from None
    problems = check_references(record, taxonomy)
    if problems:
        raise ValueError("; ".join(problems))
    return record


def read_file(path: Path, kind: str, taxonomy: Taxonomy) -> ImportBatch:
    """Read and validate every row of an import file; nothing is written here."""
    if kind not in MODELS:
        raise ImportFormatError(f"unknown record kind {kind!r}; use one of {', '.join(MODELS)}")
    batch = ImportBatch(kind=kind)
    seen: dict[str, int] = {}
    for number, raw in _rows(path):
        if isinstance(raw, str):
            batch.errors.append(RowError(number, raw))
            continue
        try:
            record = validate_record(kind, raw, taxonomy)
        except ValueError as exc:
            batch.errors.append(RowError(number, str(exc)))
            continue
        ref = record.id  # type: ignore[attr-defined]
        if ref in seen:
            batch.errors.append(RowError(number, f"id {ref!r} repeats line {seen[ref]}"))
            continue
        seen[ref] = number
        batch.records.append((number, record))
    return batch
