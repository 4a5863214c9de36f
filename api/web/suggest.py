"""Domain codes suggested on the forms, without JavaScript: the "Suggest fields" button posts
the form, which comes back with the suggestions listed and the likeliest selected.

Nothing is stored: the suggestions are what saving the record without codes would infer
(``matcher.infer``), read from the title, description and keywords written so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from api.web.i18n import t
from matcher.domain import Side
from matcher.engine import Engine
from matcher.ingest import detect_language
from matcher.store import repo

SUGGEST_ACTION = "suggest"  # the value of the form's "Suggest fields" button (name ``action``)
SHOWN = 5  # suggestions listed
# Suggestions selected for the person when they chose none: the likeliest always, others as
# likely as this (a record often belongs to two fields), at most MAX_SELECTED.
SELECT_FROM = 0.25
MAX_SELECTED = 3


@dataclass(frozen=True)
class Suggestions:
    """What the form shows: the suggestions as lines to read, and the codes to select."""

    lines: list[str]
    selected: list[str]


def record_text(side: Side, raw: dict[str, Any]) -> str:
    """The text a record of these form fields would be embedded by (empty: nothing written)."""
    fields = SimpleNamespace(
        title=raw.get("title", "").strip(),
        description=raw.get("description", "").strip(),
        keywords=raw.get("keywords", []),
    )
    if not fields.title and not fields.description:
        return ""
    return repo.text_of(side, fields)


def suggest(engine: Engine, side: Side, raw: dict[str, Any], lang: str) -> Suggestions | None:
    """The suggestions for a form's fields in ``lang``; None when no text is written yet."""
    text = record_text(side, raw)
    if not text:
        return None
    inference = engine.catalog.inferrer.suggest(text, detect_language(text))
    rest = [g for g in inference.ranked if g.code != inference.subfield.code]
    shown = [inference.subfield, *rest][:SHOWN]
    tax = engine.taxonomy
    lines = [
        t(
            lang,
            "form.suggestion",
            code=g.code,
            path=tax.domain_path(g.code, lang),
            percent=round(100 * g.confidence),
        )
        for g in shown
    ]
    selected = [g.code for g in shown if g.confidence >= SELECT_FROM][:MAX_SELECTED]
    return Suggestions(lines=lines, selected=selected or [inference.subfield.code])
