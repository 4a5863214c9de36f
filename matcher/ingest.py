"""Read and validate import files (JSONL or CSV) of technologies, needs and brokers."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from matcher import limits
from matcher.domain import BrokerIn, NeedIn, TechnologyIn
from matcher.errors import FieldError, InvalidInputError, RecordInvalidError, field_errors_of
from matcher.taxonomy import Taxonomy

Kind = Literal["technologies", "needs", "brokers"]
MODELS: dict[str, type[BaseModel]] = {
    "technologies": TechnologyIn,
    "needs": NeedIn,
    "brokers": BrokerIn,
}
_SINGULAR = {"technologies": "technology", "needs": "need", "brokers": "broker"}
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


# pydantic reports these two with wording meant for programmers; people get plainer words.
_PLAIN_MESSAGES = {"extra_forbidden": "unknown field", "missing": "required field is missing"}
EMPTY = "must not be empty"  # a text that is blank once stripped (pydantic: "at least 1 character")


def blank_text(error_type: str, ctx: Mapping[str, Any] | None) -> bool:
    """Whether one of pydantic's errors says a text was blank once stripped."""
    return error_type == "string_too_short" and (ctx or {}).get("min_length") == 1


# Errors about the record as a whole that one field can fix: shown on that field.
_FIELD_OF_TYPE = {"trl_window": "trl_max", "budget_window": "budget_max"}


def _from_pydantic(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as field errors: type, location and context kept as they are."""
    out = []
    for error in field_errors_of(exc.errors()):
        msg = (
            EMPTY
            if blank_text(error.type, error.ctx)
            else _PLAIN_MESSAGES.get(error.type, error.msg)
        )
        loc = error.loc or ((_FIELD_OF_TYPE[error.type],) if error.type in _FIELD_OF_TYPE else ())
        out.append(FieldError(type=error.type, loc=loc, msg=msg, ctx=error.ctx))
    return out


def _codes(value: Any) -> list[str]:
    """A list of codes as given (a list, or ``a;b`` text), for checking before validation."""
    if isinstance(value, str):
        value = value.split(";")
    if not isinstance(value, list | tuple):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def reference_errors(
    values: Mapping[str, Any], taxonomy: Taxonomy, *, kind: str, skip: Set[str] = frozenset()
) -> list[FieldError]:
    """Codes that must exist in the reference data (domains, regions), as typed field errors.

    Args:
        values: a validated record's fields, or the raw fields when validation failed.
        kind: ``technologies``, ``needs`` or ``brokers``.
        skip: fields already reported (a field gets one kind of problem at a time).
    """
    errors: list[FieldError] = []
    if "domains" not in skip:
        for i, code in enumerate(_codes(values.get("domains"))):
            if code not in taxonomy.domains:
                errors.append(
                    FieldError(
                        "unknown_domain",
                        ("domains", i),
                        f"unknown domain code {code} (see data/taxonomy/domains.json)",
                        {"code": code},
                    )
                )
    for name in ("region", "home_region"):
        given = values.get(name)
        if name in skip or not isinstance(given, str) or not given.strip():
            continue
        code = given.strip()
        if not taxonomy.is_region(code):
            errors.append(
                FieldError(
                    "unknown_region",
                    (name,),
                    f"unknown region code {code!r}; use ISO 3166 codes such as CN-SH, DE or US-CA",
                    {"code": code},
                )
            )
    if kind == "brokers" and "regions" not in skip:
        for i, code in enumerate(_codes(values.get("regions"))):
            if not taxonomy.is_region(code) and code not in taxonomy.groupings:
                errors.append(
                    FieldError(
                        "unknown_region_or_grouping",
                        ("regions", i),
                        f"unknown region or grouping code {code}",
                        {"code": code},
                    )
                )
    return errors


def check_references(record: BaseModel, taxonomy: Taxonomy) -> list[FieldError]:
    """Problems with a validated record's reference codes (a technology's domains may be
    taken from its CPC classes first; a record without any gets them inferred when saved)."""
    if isinstance(record, TechnologyIn) and not record.domains and record.cpc:
        record.domains = sorted({d for c in record.cpc for d in taxonomy.domains_for_cpc(c)})
    kind = next(k for k, model in MODELS.items() if isinstance(record, model))
    return reference_errors(dict(record), taxonomy, kind=kind)


def validate_record(
    kind: str,
    raw: Mapping[str, Any],
    taxonomy: Taxonomy,
    *,
    context: Mapping[str, Any] | None = None,
) -> BaseModel:
    """Validate one raw record against its model and the reference data.

    Args:
        context: pydantic's validation context, e.g. ``{limits.PAST_DEADLINES_OK: True}``
            to accept a deadline that has passed (as file imports do).

    Raises:
        RecordInvalidError: with every problem found, each a ``FieldError`` (pydantic's type,
            location and context, or the engine's own: ``unknown_domain``, ``unknown_region``,
            ``trl_window``, ``budget_window``, …). No domain code is needed: a record without
            any gets them inferred from its text when it is saved (``matcher.infer``).
    """
    model = MODELS[kind]
    what = _SINGULAR[kind]
    try:
        record = model.model_validate(dict(raw), context=dict(context or {}))
    except ValidationError as exc:
        errors = _from_pydantic(exc)
        # Unknown codes are reported too when other fields failed, so one round fixes all.
        failed = {e.field for e in errors}
        refs = reference_errors(raw, taxonomy, kind=kind, skip=failed)
        raise RecordInvalidError([*errors, *refs], what=what) from None
    problems = check_references(record, taxonomy)
    if problems:
        raise RecordInvalidError(problems, what=what)
    return record


# A file may carry needs whose deadline has passed (the demo set, records moved from elsewhere).
_IMPORTED = {limits.PAST_DEADLINES_OK: True}


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
            record = validate_record(kind, raw, taxonomy, context=_IMPORTED)
        except RecordInvalidError as exc:
            batch.errors.append(RowError(number, "; ".join(str(e) for e in exc.errors)))
            continue
        ref = record.id  # type: ignore[attr-defined]
        if ref in seen:
            batch.errors.append(RowError(number, f"id {ref!r} repeats line {seen[ref]}"))
            continue
        seen[ref] = number
        batch.records.append((number, record))
    return batch


def intended_answers(path: Path) -> dict[str, dict[str, int]]:
    """Intended answers of a demo's needs (``intended.tsv``): need ref → {technology ref: grade}."""
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            out.setdefault(row["need_id"], {})[row["technology_id"]] = int(row["grade"])
    return out
