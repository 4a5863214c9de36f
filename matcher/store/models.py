"""SQLAlchemy 2.0 typed tables of the store."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always reads back with its timezone (UTC): SQLite stores none, so
    without this the API would write times without an offset (not RFC 3339)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Timezone-aware now, used for all timestamps."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class Catalogued(Timestamped):
    """Columns shared by technologies and needs: visibility, lifecycle, embedding identity."""

    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    # Submitters without an account follow their record through an unguessable link.
    tracking_hash: Mapped[str | None] = mapped_column(
        String(64), nullable=True, unique=True, index=True
    )
    # The broker who created the record through the API (None: imported, a form, an admin).
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Domain codes no person set: inferred from the text when saved (matcher.infer), with the
    # engine's confidence in them (0–1); codes a person sets clear both.
    domains_inferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    domain_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)


class TechnologyRow(Catalogued, Base):
    __tablename__ = "technologies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(300))
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    trl: Mapped[int] = mapped_column(Integer, index=True)
    region: Mapped[str] = mapped_column(String(16), index=True)
    ip_status: Mapped[str] = mapped_column(String(20), default="none")
    patents: Mapped[list[str]] = mapped_column(JSON, default=list)
    cpc: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    licensing: Mapped[str | None] = mapped_column(String(32), nullable=True)
    contact: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The exchange market's listing: terms in words and an asking-price range (in currency).
    licensing_terms: Mapped[str | None] = mapped_column(Text, nullable=True)
    asking_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    asking_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    asking_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)


class NeedRow(Catalogued, Base):
    __tablename__ = "needs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    enterprise: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    trl_min: Mapped[int] = mapped_column(Integer)
    trl_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trl_hard: Mapped[bool] = mapped_column(Boolean, default=False)
    region_scope: Mapped[str] = mapped_column(String(16))
    home_region: Mapped[str] = mapped_column(String(16))
    region_hard: Mapped[bool] = mapped_column(Boolean, default=False)
    budget_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    budget_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    contact: Mapped[str | None] = mapped_column(String(300), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    # pending | routed | unrouted | closed (matcher.route.RoutingState); the reason of the last
    # routing outcome in each reader's language ({"en": ..., "zh": ...}).
    routing_state: Mapped[str] = mapped_column(
        String(16), default="pending", server_default="pending", index=True
    )
    routing_reason: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    routed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class BrokerRow(Timestamped, Base):
    __tablename__ = "brokers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    certificate_no: Mapped[str] = mapped_column(String(64), unique=True)
    level: Mapped[str] = mapped_column(String(16))
    valid_until: Mapped[date] = mapped_column(Date)
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)


class MatchRow(Base):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("need_id", "technology_id", name="uq_match_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    technology_id: Mapped[int] = mapped_column(
        ForeignKey("technologies.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[float] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(Text)
    # The explanation in each reader's language ({"en": ..., "zh": ...}); None on old rows.
    explanations: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    rank: Mapped[int] = mapped_column(Integer)
    engine_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class EmbeddingRow(Base):
    """Embedding cache keyed by model and content hash: unchanged text is never re-embedded."""

    __tablename__ = "embeddings"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiTokenRow(Base):
    """A bearer token, stored only as its SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | broker
    broker_id: Mapped[int | None] = mapped_column(
        ForeignKey("brokers.id", ondelete="CASCADE"), nullable=True, index=True
    )
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class RoutedMatchRow(Timestamped, Base):
    """A ranked match routed to one broker's inbox, with the reason it went to them."""

    __tablename__ = "routed_matches"
    __table_args__ = (UniqueConstraint("need_id", "technology_id", name="uq_routed_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    technology_id: Mapped[int] = mapped_column(
        ForeignKey("technologies.id", ondelete="CASCADE"), index=True
    )
    broker_id: Mapped[int] = mapped_column(ForeignKey("brokers.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(Text)
    # The explanation in each reader's language ({"en": ..., "zh": ...}); None on old rows.
    explanations: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    rank: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    # The reason in each reader's language ({"en": ..., "zh": ...}); None on old rows.
    reasons: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # new | seen | claimed | declined | returned (taken back from a suspended or expired broker,
    # waiting to be routed again)
    state: Mapped[str] = mapped_column(String(16), default="new", index=True)


class FeedbackRow(Base):
    """A broker's verdict on a routed match, kept for later ranking work.

    One row per verdict: a repeated accept (or decline) of an item by its broker is the same
    verdict, and the learned ranker must not count it twice.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("routed_id", "broker_id", "decision", name="uq_feedback_verdict"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    routed_id: Mapped[int] = mapped_column(
        ForeignKey("routed_matches.id", ondelete="CASCADE"), index=True
    )
    broker_id: Mapped[int] = mapped_column(ForeignKey("brokers.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(16))  # accept | decline
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DealRow(Timestamped, Base):
    """A claimed match carried through the deal pipeline."""

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    routed_id: Mapped[int] = mapped_column(
        ForeignKey("routed_matches.id", ondelete="CASCADE"), unique=True
    )
    broker_id: Mapped[int] = mapped_column(ForeignKey("brokers.id", ondelete="CASCADE"), index=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    technology_id: Mapped[int] = mapped_column(ForeignKey("technologies.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16), default="claimed", index=True)
    lost_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the broker means to have moved it on (the console's reminders; overdue stands out).
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # What a technology contract registration asks for, recorded when the deal is agreed.
    contract_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    contract_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    contract_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    signed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    parties: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class DealEventRow(Base):
    """Audit trail of a deal: every stage change and note (who, when, from, to)."""

    __tablename__ = "deal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # stage | note
    from_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WebhookDeliveryRow(Timestamped, Base):
    """One webhook delivery of a routed match to a broker, with its attempts: one per routed
    match and broker, under one delivery id (a UUID the receiver may drop replays by)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("routed_id", "broker_id", name="uq_delivery_routed"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    broker_id: Mapped[int] = mapped_column(ForeignKey("brokers.id", ondelete="CASCADE"), index=True)
    routed_id: Mapped[int] = mapped_column(ForeignKey("routed_matches.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class NotificationRow(Timestamped, Base):
    """One e-mail to the submitter of a need or technology about it (routed, claimed, a deal's
    stage): one per event (``key``), written in the transaction of the event, with its tries."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    side: Mapped[str] = mapped_column(String(16))  # technologies | needs
    record_id: Mapped[int] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(32))  # routed | claimed | <deal stage>
    recipient: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class RecordEventRow(Base):
    """Audit trail of technologies and needs: who changed which fields, before and after."""

    __tablename__ = "record_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[str] = mapped_column(String(16))  # technologies | needs
    record_id: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))  # create | update | archive
    fields: Mapped[list[str]] = mapped_column(JSON)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class JobRow(Base):
    """Background work of the embedded store (SQLite): written in the transaction of the write
    that caused it, claimed by a worker with a lease (``matcher.jobs.table``)."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    # at most one waiting job per key (a partial unique index: state = 'todo')
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="todo")  # todo | doing | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    run_after: Mapped[float] = mapped_column(Float)  # epoch seconds
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RecordChangeRow(Base):
    """The change log of technologies and needs: one row a record written or archived, in the
    transaction of the write and in commit order, read by every process by ``seq`` to bring its
    own indexes up to date (``matcher.follow``)."""

    __tablename__ = "record_changes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    side: Mapped[str] = mapped_column(String(16))  # technologies | needs
    record_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
