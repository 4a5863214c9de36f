"""Broker competency in the API: certificate history, training records, the track record, and
the bodies of an upgrade, a training record and a reassignment."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from matcher.competency import MAX_HOURS, MAX_TEXT, MIN_HOURS
from matcher.domain import BrokerLevel, IsoDate

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]


class CertificateEvent(BaseModel):
    """One event of a broker's certificate, with the certificate as it stood after it."""

    event: str = Field(description="certified, renewed, upgraded, suspended or reinstated")
    level: str
    certificate_no: str
    valid_until: date
    actor: str = Field(description="who did it: admin, import, migration")
    note: str | None = None
    at: str = Field(description="when (RFC 3339)")


class TrainingOut(BaseModel):
    """A course a broker took at a training base."""

    id: int
    course: str
    level: str = Field(description="beginner, intermediate or advanced")
    taken_on: date
    hours: float
    training_base: str


class TrackRecordOut(BaseModel):
    """What was routed to the broker and what came of it."""

    routed: int = Field(description="inbox items routed to the broker (now held by them)")
    waiting: int = Field(description="of those, still new or seen")
    accepted: int
    declined: int
    declined_by_reason: dict[str, int]
    deals_opened: int
    deals_open: int
    agreed: int
    closed_lost: int
    agreed_value: dict[str, float] = Field(description="agreed contract value by currency")
    median_days: dict[str, float | None] = Field(
        description="median days a deal spent in each stage it left (null: none left it yet)"
    )


class CompetencyOut(BaseModel):
    """A broker's competency record: certificate history, training, track record."""

    broker: str
    name: str
    level: str
    certificate_no: str
    valid_until: date
    history: list[CertificateEvent]
    trainings: list[TrainingOut]
    training_hours: float
    track_record: TrackRecordOut


class TrainingIn(BaseModel):
    """A training record: the course, its level, when, how long, and where."""

    model_config = ConfigDict(extra="forbid")

    course: Text
    level: BrokerLevel
    taken_on: IsoDate = Field(
        description="the day the course ended (YYYY-MM-DD); not in the future"
    )
    hours: float = Field(ge=MIN_HOURS, le=MAX_HOURS, allow_inf_nan=False)
    training_base: Text = Field(description="the issuing training base")


class UpgradeIn(BaseModel):
    """A level upgrade: the new level (above the current), certificate number and validity."""

    model_config = ConfigDict(extra="forbid")

    level: BrokerLevel
    certificate_no: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    valid_until: IsoDate = Field(description="the new certificate's last day (YYYY-MM-DD)")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class ReassignIn(BaseModel):
    """Where an unclaimed inbox item goes: another broker, by reference or id."""

    model_config = ConfigDict(extra="forbid")

    broker: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class ReassignOut(BaseModel):
    """The item after the move."""

    id: int
    state: str
    broker: str
    previous_broker: str
    need: str
    reason: str


class CertificateStatus(BaseModel):
    """Whether the certificate lets the broker receive matches today."""

    status: str = Field(description="valid, expired or suspended")
    valid: bool
    valid_until: date
    days_left: int


class BrokerOut(BaseModel):
    """A broker's profile with certificate status and workload (never the webhook secret)."""

    id: int
    ref: str
    name: str
    email: str | None
    certificate_no: str
    level: str
    valid_until: date
    certificate: CertificateStatus
    suspended: bool
    domains: list[str]
    regions: list[str]
    capacity: int
    load: int
    free_capacity: int
    webhook_url: str | None
    webhook_secret_set: bool
