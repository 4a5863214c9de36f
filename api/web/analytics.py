"""The regional analytics page (``/analytics``) for transfer centres and demonstration zones.

Public and aggregate (counts and values by region, no names), like the market's statistics:
the figures of ``matcher.analytics`` for a level and period, a tile-grid choropleth (China's
provinces at province level, countries at country level) and a bar chart drawn on the server
(``api.web.charts``), the tables, and each table as CSV. English and Chinese; no JavaScript.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import EngineDep
from api.routes.analytics import as_csv, flow_rows, region_rows, table
from api.web import charts
from api.web.i18n import t
from api.web.pages import choose_language, error_page, render
from matcher import analytics
from matcher.engine import Engine
from matcher.errors import InvalidInputError

router = APIRouter(include_in_schema=False)
METRICS = ("technologies", "needs", "routed", "deals_opened", "deals_agreed")


def _query(request: Request) -> tuple[str, analytics.Period, str]:
    """(level, period, metric) from the query string (InvalidInputError when malformed)."""
    q = request.query_params
    level = q.get("level") or "province"
    if level not in analytics.LEVELS:
        raise InvalidInputError(f"level: one of {', '.join(analytics.LEVELS)}, not {level!r}")
    metric = q.get("metric") or "needs"
    if metric not in METRICS:
        raise InvalidInputError(f"metric: one of {', '.join(METRICS)}, not {metric!r}")
    try:
        since = date.fromisoformat(q["since"]) if q.get("since") else None
        until = date.fromisoformat(q["until"]) if q.get("until") else None
    except ValueError as exc:
        raise InvalidInputError("since/until: dates as YYYY-MM-DD") from exc
    return level, analytics.Period(since, until), metric


def _figures(engine: Engine, level: str, period: analytics.Period) -> Any:
    with engine.sessions() as session:
        regions = analytics.regions(session, engine.taxonomy, level=level, period=period)
        flows = analytics.flows(session, engine.taxonomy, level=level, period=period)
    return regions, flows


def _bad(request: Request, lang: str, exc: Exception) -> Response:
    title = t(lang, "analytics.bad")
    back = f"/analytics?lang={lang}"
    return error_page(request, lang, status_code=422, title=title, message=str(exc), back=back)


@router.get("/analytics", response_class=HTMLResponse)
def page(request: Request, engine: EngineDep) -> Response:
    parsed = _parsed(request)
    if isinstance(parsed, Response):
        return parsed
    lang, level, period, metric = parsed
    _, remember = choose_language(request)
    regions, flows = _figures(engine, level, period)
    query = request.url.query
    context = {
        "page_title": t(lang, "analytics.title"),
        "level": level,
        "metric": metric,
        "since": period.since.isoformat() if period.since else "",
        "until": period.until.isoformat() if period.until else "",
        "levels": analytics.LEVELS,
        "metrics": METRICS,
        "regions": region_rows(regions, engine.taxonomy, lang),
        "flows": flow_rows(flows[:50], engine.taxonomy, lang),
        "totals": analytics.totals(regions),
        "query": query,
        "mapped": level in ("province", "country"),
    }
    return render(request, "analytics.html", lang, context, remember_lang=remember)


def _values(regions: list[analytics.RegionFigures], metric: str) -> dict[str, float]:
    return {r.code: float(r.counts[metric]) for r in regions}


def _svg(body: str) -> Response:
    return Response(body, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def _parsed(request: Request) -> tuple[str, str, analytics.Period, str] | Response:
    """(lang, level, period, metric) of a request, or the page saying what is wrong (422)."""
    lang, _ = choose_language(request)
    try:
        level, period, metric = _query(request)
    except InvalidInputError as exc:
        return _bad(request, lang, exc)
    return lang, level, period, metric


@router.get("/analytics/map.svg")
def map_svg(request: Request, engine: EngineDep) -> Response:
    """The choropleth: China's provinces (province level) or countries (country level)."""
    parsed = _parsed(request)
    if isinstance(parsed, Response):
        return parsed
    lang, level, period, metric = parsed
    tax = engine.taxonomy
    regions, _ = _figures(engine, level, period)
    values = _values(regions, metric)
    if level == "country":
        codes = [c for c in values if c in tax.regions]
        cells = charts.tile_grid({c: (tax.regions[c].lat, tax.regions[c].lon) for c in codes}, 14)
        labels = {c: c for c in codes}
    else:
        provinces = {c: r for c, r in tax.regions.items() if r.parent == "CN"}
        cells = charts.tile_grid({c: (r.lat, r.lon) for c, r in provinces.items()}, 10)
        labels = {c: tax.region_name(c, lang)[:3] if lang == "zh" else c[3:] for c in provinces}
    names = {c: tax.region_name(c, lang) for c in cells}
    title = t(lang, f"analytics.metric.{metric}")
    return _svg(charts.tile_map(cells, values, names, labels, title))


@router.get("/analytics/chart.svg")
def chart_svg(request: Request, engine: EngineDep) -> Response:
    """The busiest regions by the chosen figure, as a bar chart."""
    parsed = _parsed(request)
    if isinstance(parsed, Response):
        return parsed
    lang, level, period, metric = parsed
    regions, _ = _figures(engine, level, period)
    items = sorted(
        ((engine.taxonomy.region_name(r.code, lang), float(r.counts[metric])) for r in regions),
        key=lambda item: -item[1],
    )
    items = [item for item in items if item[1] > 0]
    title = t(lang, f"analytics.metric.{metric}")
    return _svg(charts.bar_chart(items, title, t(lang, "analytics.count")))


@router.get("/analytics/regions.csv")
def regions_csv(request: Request, engine: EngineDep) -> Response:
    """The regions table as CSV."""
    return _csv("regions", request, engine)


@router.get("/analytics/flows.csv")
def flows_csv(request: Request, engine: EngineDep) -> Response:
    """The flows table as CSV."""
    return _csv("flows", request, engine)


def _csv(kind: str, request: Request, engine: Engine) -> Response:
    parsed = _parsed(request)
    if isinstance(parsed, Response):
        return parsed
    lang, level, period, _ = parsed
    return as_csv(table(kind, engine, lang, level, period), f"{kind}-{level}.csv")
