"""Incremental indexes: a write changes the lexical index and the in-memory view for the records
it wrote, and nothing is rebuilt (tantivy BM25 underneath)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matcher import catalog as catalog_module
from matcher.engine import Engine
from matcher.retrieve.bm25 import LexicalIndex
from matcher.retrieve.scratch import Scratch
from tests.unit.fakes import FakeEncoder, fake_settings, technologies


def test_bm25_documents_are_replaced_and_removed_in_place() -> None:
    lexical = LexicalIndex([1, 2], ["graphene coating for steel", "sodium battery cathode"])
    assert [i for i, _ in lexical.search("graphene", 5)] == [1]
    lexical.upsert([(1, "solid state electrolyte"), (3, "graphene heat spreader")])
    assert [i for i, _ in lexical.search("graphene", 5)] == [3]  # 1 no longer says graphene
    assert [i for i, _ in lexical.search("electrolyte", 5)] == [1]
    lexical.remove([3, 99])
    assert lexical.search("graphene", 5) == [] and len(lexical) == 2
    scores = lexical.scores_for("sodium electrolyte", [2, 1, 42])
    assert scores[0] > 0 and scores[1] > 0 and scores[2] == 0.0
    assert lexical.doc_terms([2, 42]).tolist() == [5.0, 0.0]  # 3 stems + 2 bigrams
    shared = lexical.shared_words(["sodium", "batteries", "need"], [2, 1])
    assert shared == {2: ["batteries", "sodium"], 1: []}


def test_a_fixed_set_scores_as_a_vector() -> None:
    lexical = LexicalIndex([10, 11, 12], ["solar cell", "graphene coating", "sodium battery"])
    vector = lexical.scores("graphene battery")
    assert vector.shape == (3,) and vector[0] == 0 and vector[1] > 0 and vector[2] > 0
    assert lexical.scores_of(vector, [12, 99]) == [pytest.approx(float(vector[2])), 0.0]
    assert [i for i, _ in lexical.search("graphene battery", 1, scores=vector)] in ([11], [12])


@pytest.fixture
def engine(tmp_path: Path, database_url: str) -> Iterator[Engine]:
    eng = Engine(fake_settings(tmp_path / "home", database_url), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())
    yield eng
    eng.close()


def test_a_write_updates_the_view_without_a_rebuild(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Any] = []
    original = catalog_module.LexicalIndex

    def counted(*args: Any, **kwargs: Any) -> LexicalIndex:
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(catalog_module, "LexicalIndex", counted)
    view = engine.view("technologies")
    assert len(built) == 1 and len(view.rows) == 3 and view.languages == frozenset({"en"})
    chinese = {"title": "石墨烯防腐涂层", "description": "用于海上风电塔筒的石墨烯防腐涂层技术"}
    new = technologies()[0].model_copy(update={"id": "T-9", **chinese})
    engine.save_records("technologies", [new])
    assert engine.view("technologies") is view and len(built) == 1  # the same view, updated
    t9 = next(i for i, r in view.rows.items() if r.ref == "T-9")
    assert [i for i, _ in view.lexical.search("防腐涂层", 3)] == [t9]
    assert view.languages == frozenset({"en", "zh"})
    assert not hasattr(view.rows[t9], "description")  # long texts live in the indexes only
    # a change replaces the record's words; an archive removes it everywhere
    engine.save_records("technologies", [new.model_copy(update={"title": "毫米波雷达芯片"})])
    assert view.rows[t9].title == "毫米波雷达芯片"
    assert [i for i, _ in view.lexical.search("雷达芯片", 3)] == [t9]
    engine.archive("technologies", "T-9")
    assert t9 not in view.rows and view.lexical.search("雷达芯片", 3) == []
    assert view.languages == frozenset({"en"}) and len(built) == 1
    assert t9 not in engine.indexes["technologies"].index
    matches = engine.match_text("radar chip for fatigue detection")
    assert matches and all(m.technology_ref != "T-9" for m in matches)
    assert np.isfinite([m.score for m in matches]).all()


def test_the_view_is_compact_and_its_lexical_index_lives_in_the_process_scratch(
    engine: Engine, tmp_path: Path
) -> None:
    view = engine.view("technologies")
    rows = list(view.rows.values())
    # list columns are shared tuples, short strings one copy each: a large catalogue's rows
    # cost their distinct texts, not one list and one string per column per row
    assert all(isinstance(r.domains, tuple) and isinstance(r.cpc, tuple) for r in rows)
    same_region = [r for r in rows if r.region == rows[0].region]
    assert len({id(r.region) for r in same_region}) == 1
    assert not hasattr(rows[0], "content_hash") and not hasattr(rows[0], "updated_at")
    scratch = tmp_path / "home" / "scratch"
    mine = [p for p in scratch.iterdir() if p.name.startswith(f"{os.getpid()}-")]
    assert len(mine) == 1 and any(mine[0].glob("technologies-*/meta.json"))
    engine.close()  # the process's working files go with it
    assert not mine[0].exists()


def test_the_scratch_of_a_process_that_no_longer_runs_is_swept(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp_path / f"{int(ended.stdout)}-abc"
    alive = tmp_path / f"{os.getppid()}-def"
    for path in (dead, alive):
        (path / "technologies-x").mkdir(parents=True)
    scratch = Scratch(tmp_path)
    made = scratch.directory("needs")
    assert not dead.exists() and alive.exists() and made.is_dir()
    scratch.remove()
    assert not made.exists() and alive.exists()
