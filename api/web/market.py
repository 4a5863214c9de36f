"""The exchange market's pages: the public listing and the statistics (tables, CSV downloads).

Server-rendered in English or Chinese (``lang`` query, cookie, Accept-Language), filters as GET
forms, pages as links: nothing needs JavaScript. What a listing shows is the engine's rule
(``matcher.market``): a confidential technology is a teaser, no entry shows a contact.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import EngineDep
from api.web.choices import domain_groups, region_groups
from api.web.i18n import field_error_text, t
from api.web.pages import choose_language, render
from matcher import market
from matcher.errors import FieldError, RecordInvalidError
from matcher.taxonomy import Taxonomy

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
TABLES = ("field", "region", "period", "type")
FILTERS = ("domain", "trl_min", "region", "q")


def _money(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def price_text(entry: market.Entry, lang: str) -> str:
    """An entry's asking-price range in words (``on request`` without one)."""
    low, high, currency = entry.asking_min, entry.asking_max, entry.asking_currency or ""
    if low is not None and high is not None:
        return t(lang, "market.price_range", low=_money(low), high=_money(high), currency=currency)
    if low is not None:
        return t(lang, "market.price_from", low=_money(low), currency=currency)
    if high is not None:
        return t(lang, "market.price_upto", high=_money(high), currency=currency)
    return t(lang, "market.price_none")


def _card(entry: market.Entry, tax: Taxonomy, lang: str) -> dict[str, Any]:
    return {
        "entry": entry,
        "fields": [tax.domain_path(c, lang) for c in entry.domains if c in tax.domains],
        "where": tax.region_name(entry.region, lang),
        "licensing": t(lang, f"tech.lic.{entry.licensing}") if entry.licensing else "",
        "price": price_text(entry, lang),
    }


def _number(text: str | None, low: int, high: int) -> int | None:
    """A whole number from a query parameter within bounds, else None (ignored)."""
    if text is None or not text.strip().isdigit():
        return None
    value = int(text.strip())
    return value if low <= value <= high else None


def _errors(exc: RecordInvalidError, lang: str) -> list[str]:
    return [field_error_text(lang, e) for e in exc.errors]


@router.get("/market", response_class=HTMLResponse)
def market_page(request: Request, engine: EngineDep) -> Response:
    """The public listing of technologies open for licensing, with filters and pages."""
    lang, remember = choose_language(request)
    tax, params = engine.taxonomy, request.query_params
    values = {name: (params.get(name) or "").strip()[:200] for name in FILTERS}
    page = _number(params.get("page"), 1, 10**6) or 1
    errors: list[str] = []
    try:
        with engine.sessions() as session:
            found = market.listing(
                session,
                tax,
                domain=values["domain"] or None,
                trl_min=_number(values["trl_min"], 1, 9),
                region=values["region"] or None,
                q=values["q"] or None,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
            )
    except RecordInvalidError as exc:
        errors = _errors(exc, lang)
        found = market.Listing(entries=[], total=0, limit=PAGE_SIZE, offset=0)
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    kept = {k: v for k, v in values.items() if v}

    def link(to: int) -> str:
        return "/market?" + urlencode({**kept, "page": to, "lang": lang})

    return render(
        request,
        "market.html",
        lang,
        {
            "page_title": t(lang, "market.page_title"),
            "values": values,
            "errors": {},
            "problems": errors,
            "domain_groups": domain_groups(tax, lang),
            "region_groups": region_groups(tax, lang),
            "trl_options": [(str(level), f"TRL {level}") for level in range(1, 10)],
            "cards": [_card(e, tax, lang) for e in found.entries],
            "total": found.total,
            "page": page,
            "pages": pages,
            "prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if page < pages else None,
        },
        remember_lang=remember,
    )


def _window(params: Any) -> tuple[date | None, date | None, str, list[FieldError]]:
    """since, until and period from the query; a date that cannot be read is a problem."""
    problems: list[FieldError] = []
    found: dict[str, date | None] = {}
    for name in ("since", "until"):
        text = (params.get(name) or "").strip()
        try:
            found[name] = date.fromisoformat(text) if text else None
        except ValueError:
            found[name] = None
            problems.append(FieldError(type="date_parsing", loc=(name,), msg="not a date"))
    period = params.get("period") or "quarter"
    if period not in tuple(market.Period):
        period = "quarter"
    return found["since"], found["until"], period, problems


def _rows(stats: market.Statistics, tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """One row per group and currency, named for people."""
    rows = []
    for group in stats.groups:
        if stats.by is market.GroupBy.type:
            name = t(lang, f"contract.{group.key}")
        elif group.key == market.UNCLASSIFIED:
            name = t(lang, "stats.unclassified")
        else:
            name = market.group_name(tax, stats.by, group.key, lang)
        for total in group.totals.values():
            rows.append(
                {
                    "key": group.key,
                    "name": name,
                    "currency": total.currency,
                    "transactions": total.transactions,
                    "value": total.value,
                    "shown": _money(total.value),
                }
            )
    return rows


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not read as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def stats_csv(by: str, rows: list[dict[str, Any]]) -> str:
    """A statistics table as CSV: the group's code and name, currency, transactions, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([by, "name", "currency", "transactions", "value"])
    for row in rows:
        writer.writerow(
            [
                _cell(row["key"]),
                _cell(row["name"]),
                row["currency"],
                row["transactions"],
                f"{row['value']:.2f}",
            ]
        )
    return out.getvalue()


@router.get("/market/stats", response_class=HTMLResponse)
def stats_page(request: Request, engine: EngineDep) -> Response:
    """The market's statistics as tables; ``?format=csv&by=…`` downloads one table as CSV."""
    lang, remember = choose_language(request)
    tax, params = engine.taxonomy, request.query_params
    since, until, period, problems = _window(params)
    tables: dict[str, list[dict[str, Any]]] = {}
    transactions = 0
    try:
        with engine.sessions() as session:
            for by in TABLES:
                stats = market.statistics(
                    session, tax, by=by, period=period, since=since, until=until
                )
                tables[by] = _rows(stats, tax, lang)
                transactions = sum(g.transactions for g in stats.groups)
    except RecordInvalidError as exc:
        problems += exc.errors
        tables = {by: [] for by in TABLES}
    if params.get("format") == "csv":
        by = params.get("by") or "field"
        by = by if by in TABLES else "field"
        name = f"market-{by}-{period}.csv"
        return Response(
            stats_csv(by, tables[by]),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
    window = {"since": params.get("since") or "", "until": params.get("until") or ""}
    query = urlencode({k: v for k, v in {**window, "period": period}.items() if v})
    return render(
        request,
        "market_stats.html",
        lang,
        {
            "page_title": t(lang, "stats.page_title"),
            "tables": [(by, tables[by]) for by in TABLES],
            "period": period,
            "periods": list(market.Period),
            "window": window,
            "query": query,
            "transactions": transactions,
            "problems": [field_error_text(lang, e) for e in problems],
        },
        remember_lang=remember,
    )
