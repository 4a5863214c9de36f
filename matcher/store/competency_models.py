"""Tables of broker competency (migration 0012): certificate history and training records.

Kept beside ``models`` (which would pass its size otherwise) on the same ``Base``; imported by
the store's readers and writers of competency (``repo.competency``, ``repo.records``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from matcher.store.models import Base, UtcDateTime, utcnow


class BrokerCertificateRow(Base):
    """One event of a broker's certificate: certified, renewed, upgraded, suspended or
    reinstated, with the certificate as it stood after it."""

    __tablename__ = "broker_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("brokers.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    certificate_no: Mapped[str] = mapped_column(String(64))
    valid_until: Mapped[date] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class BrokerTrainingRow(Base):
    """A course a broker took at a training base (level, date, hours)."""

    __tablename__ = "broker_trainings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("brokers.id", ondelete="CASCADE"), index=True)
    course: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    taken_on: Mapped[date] = mapped_column(Date)
    hours: Mapped[float] = mapped_column(Float)
    training_base: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
