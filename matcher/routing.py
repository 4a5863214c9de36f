"""Routing against the store: route one need, take matches back from lapsed brokers.

The rules (who may take what, in which order, and why) are ``matcher.route``'s plain
functions; this module reads their inputs from the store and writes their outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from matcher import notify
from matcher.domain import Match
from matcher.route import Reason, RoutingRules, RoutingState, plan, written
from matcher.store import repo
from matcher.store.models import NeedRow, TechnologyRow, utcnow
from matcher.store.repo import routing as routes
from matcher.taxonomy import Taxonomy


@dataclass
class RoutingOutcome:
    """What routing did with one need."""

    need_id: int
    need_ref: str
    state: RoutingState
    routed_ids: list[int] = field(default_factory=list)
    reason: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view for the CLI and the API."""
        return {
            "need_id": self.need_id,
            "need_ref": self.need_ref,
            "state": self.state.value,
            "routed_ids": self.routed_ids,
            "reason": self.reason,
        }


def route_need(
    session: Session,
    need: NeedRow,
    matches: Sequence[Match],
    *,
    today: date,
    tax: Taxonomy,
    rules: RoutingRules,
) -> RoutingOutcome:
    """Route the need's best matches to brokers and record the need's routing state.

    A need with an agreed deal is closed and never routed again; a pair already in an inbox
    keeps its broker; a pair taken back from a lapsed broker goes to another one.
    """
    # One routing of a need at a time: this first write holds the need's row (PostgreSQL's row
    # lock, SQLite's write lock) until commit, and what a concurrent routing of the same need
    # stored is read after it, so its pairs are kept rather than inserted twice.
    need.updated_at = utcnow()
    session.flush()
    session.refresh(need)
    outcome = RoutingOutcome(need.id, need.ref, RoutingState(need.routing_state))
    if need.routing_state == RoutingState.closed or routes.has_agreed_deal(session, need.id):
        routes.set_routing_state(need, RoutingState.closed, need.routing_reason)
        outcome.state = RoutingState.closed
        return outcome
    pairs = routes.routed_pairs(session, need.id)
    active = frozenset(t for t, row in pairs.items() if row.state != routes.RETURNED)
    found = repo.rows_by_ids(session, TechnologyRow, [m.technology_id for m in matches])
    technologies = {i: t for i, t in found.items() if t.status == repo.ACTIVE}
    brokers = routes.brokers(session, lock=True)  # before their loads: see routes.brokers
    loads = routes.broker_loads(session)
    result = plan(
        need,
        matches,
        technologies,
        brokers,
        loads,
        active=active,
        today=today,
        tax=tax,
        rules=rules,
    )
    rows = []
    for assignment in result.assignments:
        reasons = written(assignment.reasons, tax)
        returned = pairs.get(assignment.match.technology_id)
        if returned is not None:
            # keep where it came from: the note take_back_lapsed appended last
            came_from = {
                lang: (returned.reasons or {}).get(lang, returned.reason).rsplit("; ", 1)[-1]
                for lang in reasons
            }
            reasons = {lang: f"{came_from[lang]}; {text}" for lang, text in reasons.items()}
            routes.reassign(
                returned,
                assignment.match,
                broker_id=assignment.broker.id,
                reason=reasons["en"],
                reasons=reasons,
            )
            rows.append(returned)
        else:
            row = routes.routed_row(
                assignment.match,
                need_id=need.id,
                broker_id=assignment.broker.id,
                reason=reasons["en"],
                reasons=reasons,
            )
            session.add(row)
            rows.append(row)
    session.flush()
    outcome.routed_ids = [row.id for row in rows]
    outcome.state = result.state
    outcome.reason = written(result.reason, tax)
    routes.set_routing_state(need, result.state, outcome.reason, routed=bool(rows))
    if rows:
        notify.routed(session, need, len(rows))
    return outcome


def take_back_lapsed(session: Session, *, today: date, tax: Taxonomy) -> list[int]:
    """Take the unclaimed items of suspended and expired brokers back; their needs' ids.

    Each returned item keeps a note of whom it came from; the needs are routed again by
    the caller (``Engine.route_unrouted``).
    """
    needs: list[int] = []
    for broker in routes.lapsed_holders(session, today):
        why = "suspended" if broker.suspended else "expired"
        note = written([Reason("returned", {"broker": broker.ref, "why": why})], tax)
        for row in routes.take_back(session, broker.id):
            # an old row has its English reason only: the note follows it in each language
            before = {lang: (row.reasons or {}).get(lang, row.reason) for lang in note}
            row.reasons = {lang: f"{before[lang]}; {text}" for lang, text in note.items()}
            row.reason = row.reasons["en"]
            needs.append(row.need_id)
    return list(dict.fromkeys(needs))
