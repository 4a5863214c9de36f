"""The store on SQLite and PostgreSQL: migrations, upserts, embedding cache, matches."""

from __future__ import annotations

from datetime import date

import numpy as np
from sqlalchemy import inspect, select

from matcher.domain import BrokerIn, NeedIn, TechnologyIn
from matcher.store import repo
from matcher.store.db import make_engine, migrate, session_factory, transaction
from matcher.store.models import BrokerRow, MatchRow, NeedRow, TechnologyRow
from tests.catalogue import NEEDS, TECHNOLOGIES


def test_migrations_create_schema_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # a second run is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {
        "technologies",
        "needs",
        "brokers",
        "matches",
        "embeddings",
        "alembic_version",
    } <= tables
    engine.dispose()


def test_upsert_round_trip_and_embedding_cache(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    factory = session_factory(engine)
    tech = TechnologyIn.model_validate(TECHNOLOGIES[1])
    need = NeedIn.model_validate(NEEDS[0])
    broker = BrokerIn(
        id="B-1",
        name="Li Wei",
        certificate_no="TM-1",
        level="advanced",
        valid_until=date(2027, 12, 31),
        domains=["04"],
        regions=["YRD"],
        capacity=5,
    )
    with transaction(factory) as session:
        _, created = repo.upsert_technology(session, record=tech, language="en", content_hash="h1")
        assert created
        repo.upsert_need(session, record=need, language="en", content_hash="h2")
        repo.upsert_broker(session, record=broker)
    # Updating by reference changes the row in place.
    changed = tech.model_copy(update={"trl": 7})
    with transaction(factory) as session:
        row, created = repo.upsert_technology(
            session, record=changed, language="en", content_hash="h3"
        )
        assert not created
    with factory() as session:
        stored = repo.get_by_ref_or_id(session, TechnologyRow, "T-2")
        assert stored is not None
        assert (stored.trl, stored.domains, stored.region, stored.content_hash) == (
            7,
            ["04.06"],
            "CN-ZJ",
            "h3",
        )
        assert stored.created_at is not None and stored.updated_at is not None
        assert repo.get_by_ref_or_id(session, TechnologyRow, stored.id) is stored
        need_row = session.scalar(select(NeedRow))
        assert need_row is not None and need_row.region_scope == "national"
        broker_row = session.scalar(select(BrokerRow))
        assert broker_row is not None and broker_row.regions == ["YRD"]
        assert broker_row.valid_until == date(2027, 12, 31)
        # Matches of a need are replaced, not appended.
        for rank in (1, 2):
            repo.replace_matches(
                session,
                need_id=need_row.id,
                matches=[
                    MatchRow(
                        need_id=need_row.id,
                        technology_id=stored.id,
                        score=0.5 * rank,
                        components={"semantic": 0.5},
                        explanation="x",
                        rank=1,
                        engine_version="t",
                    )
                ],
            )
            session.commit()
        assert [m.score for m in session.scalars(select(MatchRow))] == [1.0]

    cache = repo.SqlEmbeddingCache(factory)
    vector = np.arange(8, dtype=np.float32)
    cache.put_many("m", {"a": vector})
    cache.put_many("m", {"a": vector * 2})  # present hashes are kept
    found = cache.get_many("m", ["a", "b"])
    assert list(found) == ["a"]
    np.testing.assert_array_equal(found["a"], vector)
    assert cache.get_many("other-model", ["a"]) == {}
    engine.dispose()
