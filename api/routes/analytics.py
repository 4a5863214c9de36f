"""Routes: regional analytics (figures by region and flows between regions), JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import EngineDep, ReaderLangDep, StaffDep
from matcher import analytics
from matcher.domain import IsoDate
from matcher.engine import Engine
from matcher.taxonomy import Taxonomy

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

Level = Annotated[
    Literal["province", "country", "grouping"],
    Query(description="province (as recorded), country, or grouping (e.g. Yangtze River Delta)"),
]
Since = Annotated[IsoDate | None, Query(description="first day of the period (YYYY-MM-DD)")]
Until = Annotated[IsoDate | None, Query(description="last day of the period (YYYY-MM-DD)")]
# The answer is JSON, or the same table as CSV with ``format=csv``.
TABLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the table as JSON, or as CSV with format=csv",
        "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
    }
}
Format = Annotated[Literal["json", "csv"], Query(alias="format", description="json or csv")]


def region_rows(rows: list[analytics.RegionFigures], tax: Taxonomy, lang: str) -> list[dict]:
    """The regions table as plain rows (name in ``lang``; agreed value per currency)."""
    return [
        {
            "region": r.code,
            "name": tax.region_name(r.code, lang),
            **r.counts,
            "agreed_value": {k: round(v, 2) for k, v in sorted(r.agreed_value.items())},
        }
        for r in rows
    ]


def flow_rows(rows: list[analytics.Flow], tax: Taxonomy, lang: str) -> list[dict]:
    """The flows table as plain rows."""
    return [
        {
            "from": f.source,
            "from_name": tax.region_name(f.source, lang),
            "to": f.target,
            "to_name": tax.region_name(f.target, lang),
            **f.counts,
            "agreed_value": {k: round(v, 2) for k, v in sorted(f.agreed_value.items())},
        }
        for f in rows
    ]


def as_csv(rows: list[dict], filename: str) -> Response:
    """Rows as a CSV download (agreed value as one column per currency)."""
    currencies = sorted({c for r in rows for c in r["agreed_value"]})
    head = [k for k in (rows[0] if rows else {}) if k != "agreed_value"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*head, *(f"agreed_value_{c}" for c in currencies)])
    for r in rows:
        writer.writerow([*(r[k] for k in head), *(r["agreed_value"].get(c, 0) for c in currencies)])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def table(kind: str, engine: Engine, lang: str, level: str, period: analytics.Period) -> list[dict]:
    """The ``regions`` or ``flows`` table for a level and period, as plain rows."""
    figures, rows = TABLES[kind]
    with engine.sessions() as session:
        found = figures(session, engine.taxonomy, level=level, period=period)
    return rows(found, engine.taxonomy, lang)


TABLES: dict[str, tuple[Any, Any]] = {
    "regions": (analytics.regions, region_rows),
    "flows": (analytics.flows, flow_rows),
}


def _answer(
    kind: str,
    engine: Engine,
    lang: str,
    level: str,
    since: date | None,
    until: date | None,
    fmt: str,
) -> Any:
    rows = table(kind, engine, lang, level, analytics.Period(since, until))
    if fmt == "csv":
        return as_csv(rows, f"{kind}-{level}.csv")
    return {"level": level, "since": since, "until": until, kind: rows}


@router.get("/regions", response_model=None, responses=TABLE_RESPONSES)
def regions(
    _: StaffDep,
    engine: EngineDep,
    lang: ReaderLangDep,
    level: Level = "province",
    since: Since = None,
    until: Until = None,
    fmt: Format = "json",
) -> Any:
    """Per region and period: technologies offered, needs posted, matches routed, deals
    opened and agreed, agreed value by currency (``matcher.analytics``); ``format=csv``."""
    return _answer("regions", engine, lang, level, since, until, fmt)


@router.get("/flows", response_model=None, responses=TABLE_RESPONSES)
def flows(
    _: StaffDep,
    engine: EngineDep,
    lang: ReaderLangDep,
    level: Level = "province",
    since: Since = None,
    until: Until = None,
    fmt: Format = "json",
) -> Any:
    """Routed matches and deals from the needs' regions to the technologies' regions."""
    return _answer("flows", engine, lang, level, since, until, fmt)
