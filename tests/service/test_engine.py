"""Engine end to end with the real model and real FAISS, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from matcher.embed import Encoder
from matcher.engine import Engine, NotFoundError
from matcher.store import repo
from matcher.store.models import TechnologyRow
from tests.catalogue import NEEDS, TECHNOLOGIES


def _load(engine: Engine, tmp_path: Path) -> None:
    for kind, rows in (("technologies", TECHNOLOGIES), ("needs", NEEDS)):
        path = tmp_path / f"{kind}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
        engine.import_file(path, kind)


class CountingEncoder:
    """Wraps the real encoder and counts the texts it is asked to embed."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts)


def test_match_both_ways_and_persist(engine: Engine, tmp_path: Path) -> None:
    _load(engine, tmp_path)
    found = engine.match_text("paint that stops offshore steel from rusting", top=3)
    assert found[0].technology_ref == "T-2"
    item = found[0].as_dict()
    assert set(item["components"]) == {"semantic", "lexical", "domain", "readiness", "region"}
    assert 0.0 <= item["score"] <= 1.0 and item["explanation"]

    # A free-text answer is written in its reader's language only; stored matches keep both.
    text = "paint that stops offshore steel from rusting"
    in_chinese = engine.match_text(text, top=3, lang="zh")
    assert [m.technology_ref for m in in_chinese] == [m.technology_ref for m in found]
    assert set(in_chinese[0].explanations) == {"zh"}
    assert in_chinese[0].explanation == in_chinese[0].explanations["zh"] != item["explanation"]

    by_need = engine.match_need("N-1", top=3)
    assert set(by_need[0].explanations) == {"en", "zh"}
    assert by_need[0].technology_ref == "T-2"
    assert by_need[0].explanation.startswith(
        "same field: new materials › functional coatings and thin films; TRL 6 meets minimum 5"
    )
    assert "same province/state (Zhejiang" in by_need[0].explanation
    assert [m.rank for m in by_need] == [1, 2, 3]
    with engine.sessions() as session:
        from sqlalchemy import select

        from matcher.store.models import MatchRow

        stored = session.scalars(select(MatchRow).order_by(MatchRow.rank)).all()
        assert [m.technology_id for m in stored] == [m.technology_id for m in by_need]

    # The other way round: which needs does the wastewater technology answer?
    for_tech = engine.match_technology("T-4", top=2)
    assert for_tech[0].need_ref == "N-2"
    with pytest.raises(NotFoundError):
        engine.match_need("N-404")


def test_candidates_carry_both_channels_evidence() -> None:
    """A candidate found by one channel gets the other channel's score too (read in batches)."""
    from matcher.index import FlatIndex
    from matcher.retrieve.bm25 import LexicalIndex
    from matcher.retrieve.hybrid import hybrid_candidates

    vectors = np.eye(3, 4, dtype=np.float32)
    dense = FlatIndex(4)
    dense.add(np.array([10, 11, 12]), vectors)
    texts = ["solar cell encapsulation", "graphene coating for steel", "sodium battery"]
    lexical = LexicalIndex([10, 11, 12], texts)
    query = np.array([0.8, 0.36, 0.48, 0.0], dtype=np.float32)  # nearest: 10, then 12, 11
    found = hybrid_candidates(
        query_vector=query, query_text="graphene", dense=dense, lexical=lexical, k=1
    )
    by_id = {c.id: c for c in found}
    assert set(by_id) == {10, 11}
    assert (by_id[10].dense_rank, by_id[10].lexical_rank) == (1, None)
    assert (by_id[11].dense_rank, by_id[11].lexical_rank) == (None, 1)
    assert by_id[11].semantic == pytest.approx(0.36) and by_id[10].semantic == pytest.approx(0.8)
    assert by_id[11].bm25 > 0 and by_id[10].bm25 == 0.0


def test_dense_index_equals_exact_search(sqlite_engine: Engine, tmp_path: Path) -> None:
    _load(sqlite_engine, tmp_path)
    index = sqlite_engine.indexes["technologies"].index
    ids = index.ids()
    matrix = np.stack([index.vector(int(i)) for i in ids])
    query = sqlite_engine.embed_query("battery storage for the power grid")
    scores, got = index.search(query.reshape(1, -1), 4)
    exact = ids[np.argsort(-(matrix @ query), kind="stable")[:4]]
    assert got[0].tolist() == exact.tolist()
    np.testing.assert_allclose(scores[0], np.sort(matrix @ query)[::-1][:4], rtol=1e-5)


def test_update_archive_and_no_re_embedding(tmp_path: Path, encoder: Encoder) -> None:
    from tests.conftest import make_settings

    counting = CountingEncoder(encoder)
    engine = Engine(make_settings(tmp_path / "home"), encoder=counting)
    _load(engine, tmp_path)
    embedded = counting.texts
    assert embedded == len(TECHNOLOGIES) + len(NEEDS)
    _load(engine, tmp_path)  # unchanged texts are never embedded twice
    assert counting.texts == embedded

    # Update: the coating becomes a battery; search follows without a rebuild.
    changed = dict(
        TECHNOLOGIES[1],
        title="Cobalt-free cathode for lithium batteries",
        description="A manganese-rich cathode powder that replaces cobalt in "
        "lithium-ion batteries for electric buses and keeps 90% capacity.",
        keywords=["cathode", "battery"],
    )
    path = tmp_path / "update.jsonl"
    path.write_text(json.dumps(changed), encoding="utf-8")
    engine.import_file(path, "technologies")
    assert counting.texts == embedded + 1
    index = engine.indexes["technologies"].index
    assert len(index) == len(TECHNOLOGIES)
    top = engine.match_text("anti-corrosion paint for offshore steel", top=6)
    assert top[0].technology_ref != "T-2"
    assert engine.match_text("cobalt-free battery cathode", top=1)[0].technology_ref == "T-2"

    engine.archive("technologies", "T-3")
    refs = [m.technology_ref for m in engine.match_text("PCB defect inspection camera", top=10)]
    assert "T-3" not in refs and len(refs) == len(TECHNOLOGIES) - 1
    assert engine.indexes["technologies"].verify().ok
    engine.close()


def test_verify_finds_drift_and_build_repairs(engine: Engine, tmp_path: Path) -> None:
    _load(engine, tmp_path)
    techs = engine.indexes["technologies"]
    assert techs.verify().ok

    # Stale: the text changed in the database behind the index's back.
    with engine.sessions() as session:
        row = repo.get_by_ref_or_id(session, TechnologyRow, "T-5")
        assert row is not None
        row.description = "A completely different text about tea processing machinery."
        stale_id = row.id
        # Missing: a row written without going through the engine.
        session.add(
            TechnologyRow(
                ref="T-99",
                title="Hydrogen leak sensor",
                description="Palladium film sensor.",
                owner="DTU",
                domains=["06.02"],
                trl=5,
                region="DK-84",
                content_hash="x",
            )
        )
        session.commit()
    report = techs.verify()
    assert not report.ok
    assert report.stale == [stale_id]
    assert len(report.missing) == 1 and report.extra == []
    techs.repair()
    assert techs.verify().ok

    # Extra: a record deleted from the database is still in the index.
    with engine.sessions() as session:
        row = repo.get_by_ref_or_id(session, TechnologyRow, "T-99")
        session.delete(row)
        session.commit()
    assert len(techs.verify().extra) == 1

    # Corrupt: flip bytes in the saved vectors.
    vectors = techs.directory / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-8:] = bytes(8)
    vectors.write_bytes(bytes(data))
    report = techs.verify()
    assert report.problem is not None and "matcher index build" in report.problem
    techs.repair()
    assert techs.verify().ok


def test_hard_filters_widen_the_candidate_net(sqlite_engine: Engine, tmp_path: Path) -> None:
    _load(sqlite_engine, tmp_path)
    sqlite_engine.settings.candidates = 1  # force the retry path
    found = sqlite_engine.match_text(
        "anything useful for a factory", region="DE-BY", scope="national", hard=True, top=5
    )
    assert [m.technology_ref for m in found] == ["T-6"]
    found = sqlite_engine.match_text("battery", min_trl=7, hard=True, top=10)
    assert found and all(m.details["trl"] >= 7 for m in found)


def test_auto_index_switches_to_hnsw_when_it_outgrows_the_threshold(
    tmp_path: Path, encoder: Encoder
) -> None:
    from tests.conftest import make_settings

    engine = Engine(make_settings(tmp_path / "home", index_auto_threshold=4), encoder=encoder)
    rows = TECHNOLOGIES[:3]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    engine.import_file(path, "technologies")
    assert engine.indexes["technologies"].index.kind == "flat"
    path.write_text("\n".join(json.dumps(r) for r in TECHNOLOGIES[3:]), encoding="utf-8")
    engine.import_file(path, "technologies")
    index = engine.indexes["technologies"].index
    assert index.kind == "hnsw" and len(index) == len(TECHNOLOGIES)
    assert engine.indexes["technologies"].verify().ok
    top = engine.match_text("paint that stops offshore steel from rusting", top=1)
    assert top[0].technology_ref == "T-2"
    engine.close()
