"""Messages of the HTML pages in English and Chinese, field errors included.

``t(lang, key, **params)`` looks a message up in ``api.web.messages`` (and
``messages_domains``) and fills ``{placeholders}``; an unknown key falls back to English, then
to the key itself.
``field_error_text`` words a ``FieldError`` for people from its type and context (one table,
``ERROR_KEYS``), never from pydantic's English message.
"""

from __future__ import annotations

from typing import Any

from api.web import (
    messages,
    messages_analytics,
    messages_broker,
    messages_domains,
    messages_market,
    messages_operator,
    messages_tracking,
)
from matcher.errors import FieldError
from matcher.phrases import DEFAULT_LANGUAGE, LANGUAGES

__all__ = [
    "DEFAULT_LANGUAGE",
    "ERROR_KEYS",
    "LANGUAGES",
    "MESSAGES",
    "field_error_text",
    "normalise",
    "t",
]

MESSAGES: dict[str, dict[str, str]] = {
    lang: {
        **table,
        **messages_domains.MESSAGES.get(lang, {}),
        **messages_tracking.MESSAGES.get(lang, {}),
        **messages_broker.MESSAGES.get(lang, {}),
        **messages_analytics.MESSAGES.get(lang, {}),
        **messages_market.MESSAGES.get(lang, {}),
        **messages_operator.MESSAGES.get(lang, {}),
    }
    for lang, table in messages.MESSAGES.items()
}

# Field error type → message key. The message is filled from the error's context.
ERROR_KEYS: dict[str, str] = {
    # pydantic's types
    "missing": "err.required",
    "string_too_short": "err.min_length",
    "string_too_long": "err.max_length_plain",
    "int_parsing": "err.int",
    "int_type": "err.int",
    "int_from_float": "err.int",
    "float_parsing": "err.number",
    "float_type": "err.number",
    "finite_number": "err.number",
    "greater_than_equal": "err.ge",
    "less_than_equal": "err.le",
    "enum": "err.choice",
    "literal_error": "err.choice",
    "date_parsing": "err.date",
    "date_from_datetime_parsing": "err.date",
    "date_from_datetime_inexact": "err.date",
    "date_type": "err.date",
    "string_pattern_mismatch": "err.pattern",
    # the engine's own (matcher.ingest, matcher.domain)
    "unknown_domain": "err.domains_unknown",
    "unknown_region": "err.region_unknown",
    "trl_window": "err.trl_window",
    "budget_window": "err.budget_window",
    "unknown_currency": "err.currency",
    "deadline_past": "err.deadline_past",
    "date_future": "err.date_future",
    "date_window": "err.date_window",
    "control_character": "err.control_character",
    "surrogate_character": "err.control_character",
    "too_long": "err.too_many",
    # the forms' own
    "text_too_long": "err.max_length",
}
# The same type on a particular field, where the field says more than the type.
FIELD_ERROR_KEYS: dict[tuple[str, str], str] = {
    ("string_pattern_mismatch", "currency"): "err.currency",
    ("string_pattern_mismatch", "id"): "err.no_spaces",
}


def normalise(lang: str | None) -> str | None:
    """``en``/``zh`` for a supported language tag (``zh-CN`` → ``zh``), else None."""
    if not lang:
        return None
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


def t(lang: str, key: str, **params: Any) -> str:
    """The message ``key`` in ``lang`` with ``params`` filled in."""
    text = MESSAGES.get(lang, {}).get(key) or MESSAGES[DEFAULT_LANGUAGE].get(key) or key
    return text.format(**params) if params else text


class _Context(dict[str, Any]):
    """Error context for ``str.format_map``: numbers grouped (20,000), a missing value blank."""

    def __missing__(self, key: str) -> str:
        return ""


def _shown(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int | float) else value


def field_error_text(lang: str, error: FieldError) -> str:
    """A field error in ``lang`` for people, worded from its type and context."""
    key = FIELD_ERROR_KEYS.get((error.type, error.field)) or ERROR_KEYS.get(error.type)
    if key is None:  # a type without wording of its own: say what is wrong in English
        return t(lang, "err.other", detail=error.msg)
    template = MESSAGES.get(lang, {}).get(key) or MESSAGES[DEFAULT_LANGUAGE][key]
    return template.format_map(_Context({k: _shown(v) for k, v in error.ctx.items()}))
