"""Repository functions: keyword-only, typed, one concern each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert
from sqlalchemy.orm import Session, sessionmaker

from matcher.domain import BrokerIn, NeedIn, Side, TechnologyIn
from matcher.store.models import BrokerRow, EmbeddingRow, MatchRow, NeedRow, TechnologyRow
from matcher.store.repo.competency import add_certificate_event

Row = TypeVar("Row", TechnologyRow, NeedRow, BrokerRow)

ACTIVE = "active"
ARCHIVED = "archived"


def technology_text(row: TechnologyRow | TechnologyIn) -> str:
    """The text embedded for a technology: what a searcher would read first."""
    keywords = f" Keywords: {', '.join(row.keywords)}." if row.keywords else ""
    return f"{row.title}. {row.description}{keywords}"


def need_text(row: NeedRow | NeedIn) -> str:
    """The text embedded for a need."""
    return f"{row.title}. {row.description}"


def _upsert(session: Session, model: type[Row], ref: str, values: dict) -> tuple[Row, bool]:
    row = session.scalar(select(model).where(model.ref == ref))
    created = row is None
    if row is None:
        row = model(ref=ref, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    return row, created


def _domain_origin(values: dict[str, Any]) -> None:
    """Whether the codes were inferred: an ``Inferred*`` record carries its confidence; codes a
    person set (any other record) clear the flag of an earlier inference."""
    values.setdefault("domain_confidence", None)
    values["domains_inferred"] = values["domain_confidence"] is not None


def upsert_technology(
    session: Session, *, record: TechnologyIn, language: str, content_hash: str
) -> tuple[TechnologyRow, bool]:
    """Insert or update a technology by its reference; returns (row, created)."""
    values = record.model_dump(exclude={"id", "language"}, mode="json")
    values.update(language=language, content_hash=content_hash, status=ACTIVE)
    _domain_origin(values)
    return _upsert(session, TechnologyRow, record.id, values)


def upsert_need(
    session: Session, *, record: NeedIn, language: str, content_hash: str
) -> tuple[NeedRow, bool]:
    """Insert or update a need by its reference; returns (row, created)."""
    values = record.model_dump(exclude={"id", "language"})
    values["region_scope"] = record.region_scope.value
    values.update(language=language, content_hash=content_hash, status=ACTIVE)
    _domain_origin(values)
    return _upsert(session, NeedRow, record.id, values)


def upsert_broker(
    session: Session, *, record: BrokerIn, actor: str = "import"
) -> tuple[BrokerRow, bool]:
    """Insert or update a broker by its reference; returns (row, created). A new broker's
    certificate history starts with ``certified``."""
    values = record.model_dump(exclude={"id"})
    values["level"] = record.level.value
    row, created = _upsert(session, BrokerRow, record.id, values)
    if created:
        add_certificate_event(session, row, event="certified", actor=actor)
    return row, created


def get_by_ref_or_id(session: Session, model: type[Any], key: str | int) -> Any:
    """Find a row by numeric id or by its reference string."""
    digits = isinstance(key, str) and key.isascii() and key.isdigit()
    if isinstance(key, int) or digits:
        number = int(key)
        # beyond 64 bits no row has that id (and the database would refuse the value)
        row = session.get(model, number) if 0 < number <= 2**63 - 1 else None
        if row is not None:
            return row
    return session.scalar(select(model).where(model.ref == str(key)))


def active_technologies(session: Session) -> Sequence[TechnologyRow]:
    """All technologies not archived, by id."""
    stmt = select(TechnologyRow).where(TechnologyRow.status == ACTIVE).order_by(TechnologyRow.id)
    return session.scalars(stmt).all()


def active_needs(session: Session) -> Sequence[NeedRow]:
    """All needs not archived, by id."""
    return session.scalars(
        select(NeedRow).where(NeedRow.status == ACTIVE).order_by(NeedRow.id)
    ).all()


def rows_by_ids(session: Session, model: type[Any], ids: Iterable[int]) -> dict[int, Any]:
    """Rows keyed by id, for the ids that exist."""
    wanted = list({int(i) for i in ids})
    if not wanted:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(wanted)))}


def person_coded(
    session: Session, *, side: Side, ids: Iterable[int]
) -> dict[int, tuple[str, list[str]]]:
    """(reference, domain codes) of those active records among ``ids`` whose codes a person
    set: the examples an inference learns from (inferred codes never teach another)."""
    model = row_model(side)
    wanted = sorted({int(i) for i in ids})
    out: dict[int, tuple[str, list[str]]] = {}
    for start in range(0, len(wanted), 900):  # stay under SQLite's bound-parameter limit
        stmt = select(model.id, model.ref, model.domains).where(
            model.id.in_(wanted[start : start + 900]),
            model.status == ACTIVE,
            model.domains_inferred.is_(False),
        )
        out.update({i: (ref, list(codes or [])) for i, ref, codes in session.execute(stmt)})
    return out


def replace_matches(session: Session, *, need_id: int, matches: Sequence[MatchRow]) -> None:
    """Replace the stored matches of a need with a fresh ranking.

    The need's row is locked first (FOR UPDATE, until commit): a replacement elsewhere waits,
    then deletes what this one stored instead of inserting its pairs a second time. (SQLite's
    one writer at a time does the same there.)
    """
    session.execute(select(NeedRow.id).where(NeedRow.id == need_id).with_for_update())
    session.execute(delete(MatchRow).where(MatchRow.need_id == need_id))
    session.add_all(matches)


class SqlEmbeddingCache:
    """Embedding cache in the ``embeddings`` table (works on SQLite and PostgreSQL)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the hashes that are present."""
        found: dict[str, np.ndarray] = {}
        with self._factory() as session:
            for start in range(0, len(hashes), 900):  # stay under SQLite's bound-parameter limit
                part = list(hashes[start : start + 900])
                stmt = select(EmbeddingRow).where(
                    EmbeddingRow.model == model, EmbeddingRow.content_hash.in_(part)
                )
                for row in session.scalars(stmt):
                    found[row.content_hash] = np.frombuffer(row.vector, dtype=np.float32).copy()
        return found

    def put_many(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors by hash; a hash already stored, by this or another process at the
        same moment, is left as it is (INSERT … ON CONFLICT DO NOTHING on both databases)."""
        if not vectors:
            return
        rows = [
            {
                "model": model,
                "content_hash": h,
                "dim": int(v.shape[0]),
                "vector": np.asarray(v, dtype=np.float32).tobytes(),
            }
            for h, v in vectors.items()
        ]
        with self._factory() as session:
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else lite_insert
            for start in range(0, len(rows), 200):  # under SQLite's bound-parameter limit
                stmt = insert(EmbeddingRow).values(rows[start : start + 200])
                session.execute(stmt.on_conflict_do_nothing())
            session.commit()


def row_model(side: Side) -> type[TechnologyRow] | type[NeedRow]:
    """The table of a side's records."""
    return TechnologyRow if side is Side.technologies else NeedRow


def text_of(side: Side, row: Any) -> str:
    """The text embedded and searched for a record of a side."""
    return technology_text(row) if side is Side.technologies else need_text(row)
