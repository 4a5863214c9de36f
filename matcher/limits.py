"""Limits on what comes in, and the checks that keep text and numbers storable.

One place for the sizes every way in shares (import files, forms, the JSON API, the command
line): how many codes, keywords or patents a record may list, how long each may be, the
largest id and budget, the currencies a budget may be in. Without them one request could
stall the engine (a 1 MB keyword is embedded and indexed under the engine's lock) or store
what the database refuses later (NUL characters on PostgreSQL, integers past 64 bits).

The checks raise pydantic's ``PydanticCustomError`` with a type of their own, so that a
``FieldError`` keeps it and the forms word it in the reader's language.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from matcher.errors import FieldError

# -- numbers ---------------------------------------------------------------------------------
MAX_ID = 2**63 - 1  # ids, offsets: what SQLite's and PostgreSQL's BIGINT hold
MAX_BUDGET = 10**15  # larger than any transfer budget in any currency, yet exact in a float

# -- how many items a list may hold ----------------------------------------------------------
# Generous against real records (the demo's largest: 3 domains, 6 keywords, 2 patents) and
# small enough that a record stays one record: the taxonomy has 61 domain codes in all.
MAX_DOMAINS = 20
MAX_REGIONS = 50  # a broker's regions and groupings
MAX_KEYWORDS = 50
MAX_PATENTS = 100
MAX_CPC = 50

# -- how long one item may be (characters) ---------------------------------------------------
MAX_CODE_CHARS = 16  # domain and region codes: the longest is 7 (BENELUX)
MAX_KEYWORD_CHARS = 100
MAX_PATENT_CHARS = 64  # CN114123456B, EP3456789B1, US 2021/0123456 A1
MAX_CPC_CHARS = 32  # H01M 10/0525

# -- currencies: ISO 4217 (list one, published 2026-01-01), currencies in circulation only:
# funds, precious metals, bond-market units, the SDR and the test codes are left out.
_ISO_4217 = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
    RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP
    TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
    ZWG
"""
CURRENCIES = frozenset(_ISO_4217.split())

# Validation context key: a file import may carry needs whose deadline has passed (the demo
# set, records moved from another system); a new record from a form or the API may not.
PAST_DEADLINES_OK = "past_deadlines_ok"

# Control characters (C0 but tab, newline and carriage return; DEL; C1) and UTF-16 surrogates,
# which only appear unpaired in a Python string (a JSON "\ud800" escape).
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_character(text: str) -> FieldError | None:
    """The first character no stored text may hold, as a field error without a location.

    ``control_character`` for NUL and the other control characters (tab, newline and carriage
    return are fine), ``surrogate_character`` for half of a UTF-16 pair on its own.
    """
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    code = f"U+{ord(found.group()):04X}"
    if "\ud800" <= found.group() <= "\udfff":
        return FieldError(
            "surrogate_character",
            (),
            f"contains an unpaired UTF-16 surrogate ({code}), which is not text; "
            "send valid Unicode (UTF-8)",
            {"char": code},
        )
    return FieldError(
        "control_character",
        (),
        f"contains the control character {code}; remove it",
        {"char": code},
    )


def clean_text(value: Any) -> Any:
    """A pydantic before-validator: refuse text with control characters or lone surrogates
    (before pydantic's own checks, some of which cannot read a lone surrogate at all)."""
    problem = bad_character(value) if isinstance(value, str) else None
    if problem is not None:
        # The message is pydantic's template: braces in it would be read as placeholders.
        raise PydanticCustomError(problem.type, problem.msg, problem.ctx)
    return value


def known_currency(value: str) -> str:
    """A pydantic after-validator: an ISO 4217 currency in circulation (``CNY``, ``EUR``, …)."""
    if value not in CURRENCIES:
        raise PydanticCustomError(
            "unknown_currency",
            "unknown currency code {code}; use an ISO 4217 code such as CNY, EUR or USD",
            {"code": value},
        )
    return value


def earliest_deadline(now: datetime | None = None) -> date:
    """The earliest deadline a new need may give: yesterday in UTC, which is still today
    somewhere on Earth (a submitter's today is never refused for their time zone)."""
    return (now or datetime.now(UTC)).date() - timedelta(days=1)


def deadline_not_past(value: date | None, info: ValidationInfo) -> date | None:
    """A pydantic after-validator: a deadline that has not passed (unless the validation
    context says ``PAST_DEADLINES_OK``, as file imports do)."""
    if value is None or (info.context or {}).get(PAST_DEADLINES_OK):
        return value
    earliest = earliest_deadline()
    if value < earliest:
        raise PydanticCustomError(
            "deadline_past",
            "the deadline {deadline} has passed; give a later date or leave it empty",
            {"deadline": value.isoformat(), "earliest": earliest.isoformat()},
        )
    return value


def json_problems(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[FieldError]:
    """What no decoded JSON value may hold, wherever it sits: bad characters in strings and
    keys, numbers that are not finite (``NaN``, ``Infinity``, ``1e400``) and integers past
    64 bits.

    Args:
        value: what ``json.loads`` returned.
        loc: where ``value`` sits (the locations of the errors start with it).
    """
    if isinstance(value, str):
        problem = bad_character(value)
        if problem is not None:
            yield FieldError(problem.type, loc, problem.msg, problem.ctx)
    elif isinstance(value, bool):
        return
    elif isinstance(value, float) and not math.isfinite(value):
        yield FieldError(
            "finite_number", loc, "Input should be a finite number", {"value": str(value)}
        )
    elif isinstance(value, int) and abs(value) > MAX_ID:
        yield FieldError(
            "integer_too_large",
            loc,
            f"integers here are at most {MAX_ID} (64 bits)",
            {"le": MAX_ID},
        )
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = bad_character(key)
            if problem is not None:
                yield FieldError(problem.type, loc, f"a key {problem.msg}", problem.ctx)
                continue
            yield from json_problems(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_problems(item, (*loc, index))
