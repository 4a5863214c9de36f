"""The domain model: technologies (supply), needs (demand), brokers and matches."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from matcher import limits

# Every string a record holds passes ``clean_text``: no NUL or other control characters, no
# lone surrogates (the database or the JSON answer would fail on them later).
_Clean = BeforeValidator(limits.clean_text)


def _text(min_length: int | None = None, max_length: int | None = None) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Text = Annotated[str, _text(max_length=300), _Clean]
Code = Annotated[str, _text(1, limits.MAX_CODE_CHARS), _Clean]  # a domain or region code
Keyword = Annotated[str, _text(1, limits.MAX_KEYWORD_CHARS), _Clean]
PatentNo = Annotated[str, _text(1, limits.MAX_PATENT_CHARS), _Clean]
CpcClass = Annotated[str, _text(1, limits.MAX_CPC_CHARS), _Clean]
# Real catalogues hold short titles (a 4-character SBIR title, a 2-character Chinese one).
Title = Annotated[str, _text(1, 300), _Clean]
Description = Annotated[str, _text(20, 20_000), _Clean]
Name = Annotated[str, _text(2, 300), _Clean]
Contact = Annotated[str, _text(max_length=300), _Clean]
Email = Annotated[str, _text(max_length=254), _Clean]
Ref = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^\S+$"),
    _Clean,
]


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Currency = Annotated[
    str,
    BeforeValidator(_upper),  # eur is EUR
    _Clean,  # declared last, so it runs first
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(limits.known_currency),
]
Budget = Annotated[float, Field(ge=0, le=limits.MAX_BUDGET, allow_inf_nan=False)]
Deadline = Annotated[date, AfterValidator(limits.deadline_not_past)]
TRL = Annotated[int, Field(ge=1, le=9, description="technology readiness level 1–9")]
LicensingTerms = Annotated[str, _text(1, 2000), _Clean]
Party = Annotated[str, _text(1, 300), _Clean]


class IPStatus(StrEnum):
    granted = "granted"
    pending = "pending"
    none = "none"
    trade_secret = "trade_secret"


class Licensing(StrEnum):
    exclusive_licence = "exclusive_licence"
    non_exclusive_licence = "non_exclusive_licence"
    assignment = "assignment"
    co_development = "co_development"
    open = "open"


class ContractType(StrEnum):
    """The kinds of technology contract a contract registration knows."""

    development = "development"
    transfer = "transfer"
    licence = "licence"
    consulting = "consulting"
    service = "service"


class RegionScope(StrEnum):
    local = "local"
    national = "national"
    international = "international"


class BrokerLevel(StrEnum):
    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"


class Language(StrEnum):
    en = "en"
    zh = "zh"


def _split_list(value: Any) -> Any:
    """Accept ``a;b`` strings (CSV cells) as lists."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator(
        "domains", "keywords", "patents", "cpc", "regions", mode="before", check_fields=False
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator(
        "domains", "keywords", "patents", "cpc", "regions", mode="after", check_fields=False
    )
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        # The same code twice says nothing more; stored once.
        return list(dict.fromkeys(value))


class TechnologyIn(_Record):
    """A technology offer as imported or submitted."""

    id: Ref
    title: Title
    description: Description
    owner: Name
    domains: list[Code] = Field(default_factory=list, max_length=limits.MAX_DOMAINS)
    trl: TRL
    region: Code
    ip_status: IPStatus = IPStatus.none
    patents: list[PatentNo] = Field(default_factory=list, max_length=limits.MAX_PATENTS)
    cpc: list[CpcClass] = Field(default_factory=list, max_length=limits.MAX_CPC)
    keywords: list[Keyword] = Field(default_factory=list, max_length=limits.MAX_KEYWORDS)
    language: Language | None = None
    licensing: Licensing | None = None
    contact: Contact | None = None
    confidential: bool = False
    # The exchange market's listing: terms in words and an asking-price range; a price without
    # a currency is in CNY, as a need's budget is.
    licensing_terms: LicensingTerms | None = None
    asking_min: Budget | None = None
    asking_max: Budget | None = None
    asking_currency: Currency | None = None

    @model_validator(mode="after")
    def _asking(self) -> TechnologyIn:
        low, high = self.asking_min, self.asking_max
        if low is not None and high is not None and high < low:
            raise PydanticCustomError(
                "asking_window", "asking_max is below asking_min", {"min": low, "max": high}
            )
        if (low is not None or high is not None) and self.asking_currency is None:
            self.asking_currency = "CNY"
        return self


class NeedIn(_Record):
    """An enterprise need as imported or submitted."""

    id: Ref
    enterprise: Name
    title: Title
    description: Description
    domains: list[Code] = Field(default_factory=list, max_length=limits.MAX_DOMAINS)
    trl_min: TRL
    trl_max: TRL | None = None
    trl_hard: bool = False
    region_scope: RegionScope
    home_region: Code
    region_hard: bool = False
    budget_min: Budget | None = None
    budget_max: Budget | None = None
    currency: Currency = "CNY"
    deadline: Deadline | None = None
    contact: Contact | None = None
    language: Language | None = None
    confidential: bool = False

    @model_validator(mode="after")
    def _windows(self) -> NeedIn:
        # Typed errors (type + ctx), so that forms translate them without reading the text.
        if self.trl_max is not None and self.trl_max < self.trl_min:
            raise PydanticCustomError(
                "trl_window",
                "trl_max ({max}) is below trl_min ({min})",
                {"min": self.trl_min, "max": self.trl_max},
            )
        if (
            self.budget_min is not None
            and self.budget_max is not None
            and self.budget_max < self.budget_min
        ):
            raise PydanticCustomError(
                "budget_window",
                "budget_max is below budget_min",
                {"min": self.budget_min, "max": self.budget_max},
            )
        return self


# Domain codes no person set: inferred from the text when the record is saved (matcher.infer).
Confidence = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class InferredTechnology(TechnologyIn):
    """A technology whose domain codes the engine inferred from its text, with how sure it is
    of them (0–1). Never read from input: the engine makes it from a ``TechnologyIn``."""

    domain_confidence: Confidence


class InferredNeed(NeedIn):
    """A need whose domain codes the engine inferred from its text (see ``InferredTechnology``)."""

    domain_confidence: Confidence


def _iso_date(value: Any) -> Any:
    """A date as ``YYYY-MM-DD`` text or a date, nothing else: pydantic would read ``0`` or
    ``"1700000000"`` as a Unix timestamp, which no person means by a date."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("date_parsing", "a date is written YYYY-MM-DD", {})


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def signed_not_future(value: date) -> date:
    """A pydantic after-validator: a signing date that is not after today anywhere on Earth
    (today in UTC plus one day, so a signer east of UTC is never refused their today)."""
    latest = datetime.now(UTC).date() + timedelta(days=1)
    if value > latest:
        raise PydanticCustomError(
            "signed_future",
            "the signing date {date} is in the future; record the contract once it is signed",
            {"date": value.isoformat()},
        )
    return value


class ContractIn(BaseModel):
    """What a technology contract registration asks for, recorded on an agreed deal."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: ContractType
    value: Annotated[float, Field(ge=0, le=limits.MAX_BUDGET, allow_inf_nan=False)]
    currency: Currency
    signed_on: Annotated[IsoDate, AfterValidator(signed_not_future)]
    parties: list[Party] = Field(min_length=1, max_length=10)


class BrokerIn(_Record):
    """A certified technology broker."""

    id: Ref
    name: Annotated[str, _text(2, 200), _Clean]
    certificate_no: Ref
    level: BrokerLevel
    valid_until: date
    domains: list[Code] = Field(default_factory=list, max_length=limits.MAX_DOMAINS)
    regions: list[Code] = Field(default_factory=list, max_length=limits.MAX_REGIONS)
    capacity: int = Field(default=10, ge=0, le=1000)
    email: Email | None = None


class Side(StrEnum):
    """The two sides of the market: technologies (supply) and needs (demand).

    One descriptor used by the engine, the routes and the forms instead of comparing strings;
    a ``StrEnum``, so its value is the collection's name (``"technologies"``, ``"needs"``).
    """

    technologies = "technologies"
    needs = "needs"

    @property
    def singular(self) -> str:
        """``technology`` or ``need``, for messages."""
        return "technology" if self is Side.technologies else "need"

    @property
    def other(self) -> Side:
        """The side a record of this side is matched against."""
        return Side.needs if self is Side.technologies else Side.technologies

    @property
    def record_model(self) -> type[TechnologyIn] | type[NeedIn]:
        """The validated input model of a record of this side."""
        return TechnologyIn if self is Side.technologies else NeedIn


@dataclass(frozen=True)
class Components:
    """Per-feature scores of one candidate pair, each in [0, 1]."""

    semantic: float
    lexical: float
    domain: float
    readiness: float
    region: float

    def as_dict(self) -> dict[str, float]:
        """The components as a plain dict, rounded for display."""
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass
class Match:
    """One ranked result: a need paired with a technology, scored and explained."""

    need_id: int | None
    technology_id: int
    score: float
    components: Components
    explanation: str
    rank: int = 0
    need_ref: str | None = None
    technology_ref: str | None = None
    title: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # The explanation in every language the engine writes (``en``, ``zh``); ``explanation`` is
    # the one in the language the caller asked for.
    explanations: dict[str, str] = field(default_factory=dict)

    def explained_in(self, lang: str) -> str:
        """The explanation in ``lang`` (the default one when that language is missing)."""
        return self.explanations.get(lang, self.explanation)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view used by the CLI and the API."""
        return {
            "rank": self.rank,
            "need_id": self.need_id,
            "need_ref": self.need_ref,
            "technology_id": self.technology_id,
            "technology_ref": self.technology_ref,
            "title": self.title,
            "score": round(self.score, 4),
            "components": self.components.as_dict(),
            "explanation": self.explanation,
        }
