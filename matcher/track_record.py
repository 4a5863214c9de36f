"""A broker's track record: what was routed to them and what came of it (accepted, declined by
reason, deals opened and agreed, agreed value by currency, median days per stage).

``stage_days`` and ``summarise`` are plain functions over plain facts; ``track_record`` reads
the facts from the store (``matcher.store.repo.competency``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from sqlalchemy.orm import Session

from matcher.store.repo import competency as store
from matcher.store.repo.routing import OPEN_STAGES, WAITING

# Stages a deal spends time in (agreed and closed_lost end it).
TIMED_STAGES = OPEN_STAGES


@dataclass(frozen=True)
class StageMove:
    """A deal's move into a stage, and when."""

    deal_id: int
    to_stage: str
    at: datetime


@dataclass(frozen=True)
class DealFacts:
    """What the track record reads of a deal."""

    stage: str
    contract_value: float | None = None
    contract_currency: str | None = None


@dataclass
class TrackRecord:
    """A broker's results: what was routed to them and what came of it."""

    routed: int = 0
    waiting: int = 0
    accepted: int = 0
    declined: int = 0
    declined_by_reason: dict[str, int] = field(default_factory=dict)
    deals_opened: int = 0
    deals_open: int = 0
    agreed: int = 0
    closed_lost: int = 0
    agreed_value: dict[str, float] = field(default_factory=dict)
    median_days: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def stage_days(moves: Sequence[StageMove]) -> dict[str, list[float]]:
    """Days each deal spent in each stage it left: from entering a stage to the next move."""
    by_deal: dict[int, list[StageMove]] = defaultdict(list)
    for move in moves:
        by_deal[move.deal_id].append(move)
    spent: dict[str, list[float]] = defaultdict(list)
    for deal_moves in by_deal.values():
        ordered = sorted(deal_moves, key=lambda m: m.at)
        for entered, left in zip(ordered, ordered[1:], strict=False):
            spent[entered.to_stage].append((left.at - entered.at).total_seconds() / 86400)
    return dict(spent)


def summarise(
    states: Mapping[str, int],
    verdicts: Sequence[tuple[str, str | None]],
    deals: Sequence[DealFacts],
    moves: Sequence[StageMove],
) -> TrackRecord:
    """A track record from plain facts: items by state, verdicts, deals, stage moves."""
    declines = Counter(
        reason or "unspecified" for decision, reason in verdicts if decision == "decline"
    )
    value: dict[str, float] = defaultdict(float)
    for deal in deals:
        if deal.stage == "agreed" and deal.contract_value is not None:
            value[deal.contract_currency or "CNY"] += deal.contract_value
    days = stage_days(moves)
    return TrackRecord(
        routed=sum(states.values()),
        waiting=sum(n for s, n in states.items() if s in WAITING),
        accepted=sum(1 for decision, _ in verdicts if decision == "accept"),
        declined=sum(declines.values()),
        declined_by_reason=dict(sorted(declines.items())),
        deals_opened=len(deals),
        deals_open=sum(1 for d in deals if d.stage in OPEN_STAGES),
        agreed=sum(1 for d in deals if d.stage == "agreed"),
        closed_lost=sum(1 for d in deals if d.stage == "closed_lost"),
        agreed_value={c: round(v, 2) for c, v in sorted(value.items())},
        median_days={s: round(median(days[s]), 1) if days.get(s) else None for s in TIMED_STAGES},
    )


def track_record(session: Session, broker_id: int) -> TrackRecord:
    """A broker's track record from the store."""
    deals = store.deals_of(session, broker_id)
    moves = [
        StageMove(e.deal_id, e.to_stage or "", e.created_at)
        for e in store.stage_moves(session, [d.id for d in deals])
    ]
    return summarise(
        store.routed_states(session, broker_id),
        store.verdicts(session, broker_id),
        [DealFacts(d.stage, d.contract_value, d.contract_currency) for d in deals],
        moves,
    )
