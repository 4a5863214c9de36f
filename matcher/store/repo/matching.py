"""What matching and the learned ranker read: a side's active records, brokers' judgements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.store.models import DealRow, FeedbackRow, NeedRow, RoutedMatchRow
from matcher.store.repo.records import ACTIVE, row_model


def active_records(session: Session, side: Side) -> Sequence[Any]:
    """Every record of a side that is not archived, by id."""
    return list(iter_active_records(session, side))


def iter_active_records(session: Session, side: Side, *, batch: int = 2000) -> Iterator[Any]:
    """Every record of a side that is not archived, by id, fetched ``batch`` rows at a time:
    only the rows the caller still holds stay in memory (the session's identity map is weak)."""
    model = row_model(side)
    query = select(model).where(model.status == ACTIVE).order_by(model.id)
    yield from session.scalars(query.execution_options(yield_per=batch))


def feedback_verdicts(session: Session) -> Sequence[Any]:
    """Every verdict on a routed match, oldest first: (need id, technology id, decision,
    reason code)."""
    return session.execute(
        select(
            RoutedMatchRow.need_id,
            RoutedMatchRow.technology_id,
            FeedbackRow.decision,
            FeedbackRow.reason_code,
        )
        .join(RoutedMatchRow, FeedbackRow.routed_id == RoutedMatchRow.id)
        .order_by(FeedbackRow.created_at, FeedbackRow.id)
    ).all()


def deal_stages(session: Session) -> Sequence[Any]:
    """The stage of every deal: (need id, technology id, stage)."""
    return session.execute(select(DealRow.need_id, DealRow.technology_id, DealRow.stage)).all()


def need_refs(session: Session) -> dict[int, str]:
    """Every need's reference by id (archived ones included)."""
    return {i: ref for i, ref in session.execute(select(NeedRow.id, NeedRow.ref))}
