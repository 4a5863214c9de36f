"""Races across processes on the store: parallel routings of different needs to one broker, and
parallel rewrites of one need's stored matches, on SQLite and PostgreSQL (each thread its own
connection, as each process would have)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from matcher.engine import Engine
from matcher.route import RoutingState
from matcher.routing import route_need
from matcher.store import repo
from matcher.store.db import transaction
from matcher.store.models import MatchRow, NeedRow, RoutedMatchRow, TechnologyRow
from matcher.store.repo.routing import WAITING
from tests.service.test_races import PARALLEL, in_parallel
from tests.unit.fakes import FakeEncoder, broker, fake_settings, need, technologies


@pytest.fixture
def engine(tmp_path: Path, database_url: str) -> Iterator[Engine]:
    """A fake-encoder engine: three technologies, one broker with room for one item, and as
    many needs as there are parallel calls, each answered by the technologies."""
    eng = Engine(fake_settings(tmp_path / "home", database_url), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())
    eng.save_records("brokers", [broker("B-1", capacity=1)])
    eng.save_records("needs", [need(f"N-{i}") for i in range(PARALLEL)])
    yield eng
    eng.close()


def test_parallel_routings_never_fill_a_broker_past_capacity(engine: Engine) -> None:
    matches = {i: engine.match_need(f"N-{i}", top=10, persist=False) for i in range(PARALLEL)}
    assert all(matches.values())
    rules = engine.routing_rules

    def route(i: int) -> RoutingState:
        with transaction(engine.sessions) as session:
            row = repo.get_by_ref_or_id(session, NeedRow, f"N-{i}")
            assert row is not None
            outcome = route_need(
                session, row, matches[i], today=date.today(), tax=engine.taxonomy, rules=rules
            )
            return outcome.state

    out = in_parallel(route)
    assert not out.errors, out.errors
    with engine.sessions() as session:
        waiting = session.scalar(
            select(func.count(RoutedMatchRow.id)).where(RoutedMatchRow.state.in_(WAITING))
        )
    assert waiting == 1
    assert sorted(out.results) == [RoutingState.routed] + [RoutingState.unrouted] * (PARALLEL - 1)


def test_parallel_rewrites_of_a_needs_matches_store_one_ranking(engine: Engine) -> None:
    with engine.sessions() as session:
        need_id = repo.get_by_ref_or_id(session, NeedRow, "N-0").id
        technology_ids = list(session.scalars(select(TechnologyRow.id).order_by(TechnologyRow.id)))

    def rewrite(i: int) -> None:
        # each call ranks the technologies in its own order, as rankings a moment apart might
        order = technology_ids[i % 3 :] + technology_ids[: i % 3]
        rows = [
            MatchRow(
                need_id=need_id,
                technology_id=technology_id,
                score=1.0 - rank / 10,
                components={},
                explanation=f"call {i}",
                rank=rank,
                engine_version="test",
            )
            for rank, technology_id in enumerate(order, start=1)
        ]
        with transaction(engine.sessions) as session:
            repo.replace_matches(session, need_id=need_id, matches=rows)

    out = in_parallel(rewrite)
    assert not out.errors, out.errors
    with engine.sessions() as session:
        stored = session.execute(
            select(MatchRow.technology_id, MatchRow.explanation).where(MatchRow.need_id == need_id)
        ).all()
    # one call's ranking, whole: every technology once, all from the same call
    assert sorted(t for t, _ in stored) == technology_ids
    assert len({explanation for _, explanation in stored}) == 1
