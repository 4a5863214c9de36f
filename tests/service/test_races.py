"""Races: 20 parallel identical requests on one inbox item, deal or reference, on SQLite and
PostgreSQL. Exactly one of them acts; the others are answered as if they had come after it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, func, insert, inspect, select

from api.errors import status_of
from matcher.catalog import Catalog, RecordExistsError
from matcher.deal import IllegalTransitionError
from matcher.domain import Side
from matcher.engine import Engine
from matcher.errors import ConflictError
from matcher.route import RoutingState
from matcher.routing import route_need
from matcher.store import repo
from matcher.store.db import alembic_config, make_engine, session_factory, transaction
from matcher.store.models import (
    BrokerRow,
    DealEventRow,
    DealRow,
    FeedbackRow,
    NeedRow,
    RoutedMatchRow,
    TechnologyRow,
)
from matcher.store.repo import deals
from tests.unit.fakes import FakeEncoder, broker, fake_settings, need, technologies

PARALLEL = 20


@dataclass
class Outcomes:
    """What each of the parallel calls returned or raised."""

    results: list[Any]
    errors: list[BaseException]


def in_parallel(call: Callable[[int], Any], n: int = PARALLEL) -> Outcomes:
    """Run ``call(i)`` in ``n`` threads released at the same moment."""
    start = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        start.wait()
        try:
            out = call(i)
        except BaseException as exc:  # noqa: BLE001 - every outcome is collected and checked
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return Outcomes(results, errors)


@pytest.fixture
def engine(tmp_path: Path, database_url: str) -> Iterator[Engine]:
    """A fake-encoder engine (SQLite or PostgreSQL): three technologies, one broker, one need."""
    eng = Engine(fake_settings(tmp_path / "home", database_url), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())
    eng.save_records("brokers", [broker("B-1", capacity=5)])
    eng.save_records("needs", [need("N-1")])
    yield eng
    eng.close()


def routed_item(engine: Engine) -> tuple[int, int]:
    """(broker id, inbox item id) of N-1's first routed match."""
    outcome = engine.match_and_route("N-1")
    assert outcome.state is RoutingState.routed and outcome.routed_ids
    return engine.broker("B-1").id, outcome.routed_ids[0]


def count(engine: Engine, column: Any, *where: Any) -> int:
    with engine.sessions() as session:
        return int(session.scalar(select(func.count(column)).where(*where)) or 0)


def test_one_of_parallel_identical_stage_changes_moves_the_deal(engine: Engine) -> None:
    broker_id, routed_id = routed_item(engine)
    deal_id = engine.claim(broker_id, routed_id, actor="B-1")
    out = in_parallel(
        lambda _: engine.change_stage(
            deal_id, to="contacted", actor="B-1", broker_id=broker_id, reroute=False
        )
    )
    assert len(out.results) == 1, out.errors
    assert all(isinstance(e, IllegalTransitionError) for e in out.errors), out.errors
    assert all("from contacted to contacted" in str(e) for e in out.errors)
    assert count(engine, DealEventRow.id, DealEventRow.to_stage == "contacted") == 1
    with engine.sessions() as session:
        assert [(e.from_stage, e.to_stage) for e in deals.events(session, deal_id)] == [
            (None, "claimed"),
            ("claimed", "contacted"),
        ]


def test_parallel_different_stage_changes_are_judged_one_after_another(engine: Engine) -> None:
    broker_id, routed_id = routed_item(engine)
    deal_id = engine.claim(broker_id, routed_id, actor="B-1")
    # half move forward, half close as lost: both are legal from claimed, and closing is also
    # legal from contacted, so exactly two succeed when a forward move comes first, else one
    out = in_parallel(
        lambda i: engine.change_stage(
            deal_id,
            to="contacted" if i % 2 else "closed_lost",
            actor="B-1",
            reason="no budget",
            reroute=False,
        )
    )
    assert all(isinstance(e, IllegalTransitionError) for e in out.errors), out.errors
    with engine.sessions() as session:
        trail = [(e.from_stage, e.to_stage) for e in deals.events(session, deal_id)]
        stage = deals.deal(session, deal_id).stage  # type: ignore[union-attr]
    assert trail in (
        [(None, "claimed"), ("claimed", "closed_lost")],
        [(None, "claimed"), ("claimed", "contacted"), ("contacted", "closed_lost")],
    )
    assert len(out.results) == len(trail) - 1 and stage == "closed_lost"


def test_one_of_parallel_declines_is_stored(engine: Engine) -> None:
    broker_id, routed_id = routed_item(engine)
    out = in_parallel(
        lambda _: engine.feedback(
            broker_id, routed_id, decision="decline", reason_code="not_relevant", reroute=False
        )
    )
    assert len(out.results) == 1, out.errors
    assert out.results[0][1:] == ("declined", True)
    assert all(isinstance(e, ConflictError) for e in out.errors), out.errors
    assert all("already declined" in str(e) for e in out.errors)
    assert count(engine, FeedbackRow.id, FeedbackRow.routed_id == routed_id) == 1


def test_parallel_accepts_store_one_verdict_and_all_answer_it(engine: Engine) -> None:
    broker_id, routed_id = routed_item(engine)
    out = in_parallel(lambda _: engine.feedback(broker_id, routed_id, decision="accept"))
    assert not out.errors, out.errors
    assert sorted(created for _, _, created in out.results) == [False] * (PARALLEL - 1) + [True]
    assert len({row.id for row, _, _ in out.results}) == 1
    assert {state for _, state, _ in out.results} == {"seen"}
    assert count(engine, FeedbackRow.id, FeedbackRow.routed_id == routed_id) == 1


def test_parallel_accepts_and_declines_are_judged_one_after_another(engine: Engine) -> None:
    broker_id, routed_id = routed_item(engine)
    out = in_parallel(
        lambda i: engine.feedback(
            broker_id,
            routed_id,
            decision="decline" if i % 2 else "accept",
            reason_code="not_relevant" if i % 2 else None,
            reroute=False,
        )
    )
    assert all(isinstance(e, ConflictError) for e in out.errors), out.errors
    with engine.sessions() as session:
        rows = session.scalars(select(FeedbackRow).where(FeedbackRow.routed_id == routed_id))
        decisions = sorted(r.decision for r in rows)
        state = session.get(RoutedMatchRow, routed_id).state  # type: ignore[union-attr]
    # one decline always; one accept when an accept came before it, none after
    assert decisions in (["decline"], ["accept", "decline"]) and state == "declined"


def test_one_of_parallel_claims_makes_a_deal(engine: Engine) -> None:
    broker_id, routed_id = routed_item(engine)
    out = in_parallel(lambda _: engine.claim(broker_id, routed_id, actor="B-1"))
    assert len(out.results) == 1, out.errors
    assert all(isinstance(e, ConflictError) for e in out.errors), out.errors
    assert all(status_of(e) == 409 for e in out.errors)  # type: ignore[arg-type]
    assert all(f"already claimed as deal {out.results[0]}" in str(e) for e in out.errors)
    assert count(engine, DealRow.id, DealRow.routed_id == routed_id) == 1
    assert count(engine, DealEventRow.id, DealEventRow.deal_id == out.results[0]) == 1


def test_a_new_id_created_by_parallel_processes_is_stored_once(engine: Engine) -> None:
    # each catalogue stands for one process: its own write lock, the one database
    catalogs = [
        Catalog(
            sessions=engine.sessions,
            taxonomy=engine.taxonomy,
            indexes=engine.indexes,
            multilingual_indexes=engine.multilingual_indexes,
        )
        for _ in range(PARALLEL)
    ]
    record = need("N-NEW", title="A brand new need for a radar chip")
    out = in_parallel(lambda i: catalogs[i].create(Side.needs, record))
    assert [r.created for r in out.results] == [1], out.errors
    assert all(isinstance(e, RecordExistsError) for e in out.errors), out.errors
    assert all(status_of(e) == 409 for e in out.errors)  # type: ignore[arg-type]
    assert count(engine, NeedRow.id, NeedRow.ref == "N-NEW") == 1


def test_parallel_routing_of_one_need_routes_each_pair_once(engine: Engine) -> None:
    matches = engine.match_need("N-1", top=10)
    rules = engine.routing_rules

    def route(_: int) -> list[int]:
        with transaction(engine.sessions) as session:
            row = repo.get_by_ref_or_id(session, NeedRow, "N-1")
            assert row is not None
            outcome = route_need(
                session, row, matches, today=date.today(), tax=engine.taxonomy, rules=rules
            )
            return outcome.routed_ids

    out = in_parallel(route)
    assert not out.errors, out.errors
    with engine.sessions() as session:
        need_id = repo.get_by_ref_or_id(session, NeedRow, "N-1").id  # type: ignore[union-attr]
    stored = count(engine, RoutedMatchRow.id, RoutedMatchRow.need_id == need_id)
    assert stored >= 1
    assert stored == len({i for ids in out.results for i in ids})


def as_of(db: Any, model: Any, **values: Any) -> Any:
    """An INSERT into a table as the database has it now (an older revision): the model's
    columns that exist there, with their defaults; later columns' defaults do not ride along."""
    present = {c["name"] for c in inspect(db).get_columns(model.__tablename__)}
    columns = [c._copy() for c in model.__table__.c if c.name in present]
    return insert(Table(model.__tablename__, MetaData(), *columns)).values(**values)


def test_migration_keeps_the_first_of_duplicate_verdicts(database_url: str) -> None:
    from alembic import command

    db = make_engine(database_url)
    command.upgrade(alembic_config(db), "0004")
    factory = session_factory(db)
    tech_row, need_row, broker_row = (as_of(db, m) for m in (TechnologyRow, NeedRow, BrokerRow))
    with transaction(factory) as session:
        # Core inserts name only the columns given: the tables as they were at 0004 (the ORM
        # rows of today carry later columns)
        tech, wanted, who = technologies()[0], need("N-1"), broker("B-1")
        session.execute(
            tech_row.values(
                ref=tech.id, title=tech.title, description=tech.description, owner=tech.owner,
                domains=tech.domains, trl=tech.trl, region=tech.region, content_hash="h1",
            )
        )  # fmt: skip
        session.execute(
            need_row.values(
                ref=wanted.id, enterprise=wanted.enterprise, title=wanted.title,
                description=wanted.description, domains=wanted.domains, trl_min=wanted.trl_min,
                region_scope=wanted.region_scope.value, home_region=wanted.home_region,
                content_hash="h2",
            )
        )  # fmt: skip
        session.execute(
            broker_row.values(
                ref=who.id, name=who.name, certificate_no=who.certificate_no,
                level=who.level.value, valid_until=who.valid_until, domains=who.domains,
                regions=who.regions, capacity=who.capacity,
            )
        )  # fmt: skip
        item = RoutedMatchRow(
            need_id=session.scalar(select(NeedRow.id)),
            technology_id=session.scalar(select(TechnologyRow.id)),
            broker_id=session.scalar(select(BrokerRow.id)),
            score=0.9,
            components={},
            explanation="",
            rank=1,
            reason="",
        )
        session.add(item)
        session.flush()
        for decision, reason in [("accept", None), ("accept", None), ("decline", "other")] * 2:
            session.add(
                FeedbackRow(
                    routed_id=item.id,
                    broker_id=item.broker_id,
                    decision=decision,
                    reason_code=reason,
                )
            )
            session.flush()
    command.upgrade(alembic_config(db), "head")
    with factory() as session:
        kept = [(r.id, r.decision) for r in session.scalars(select(FeedbackRow))]
    assert sorted(kept) == [(1, "accept"), (3, "decline")]
    db.dispose()
