"""The cross-lingual benchmark set keeps its promises, and the benchmark runs on it end to end."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.crosslingual import DATA, DIRECTIONS, RANKINGS, load_set, run_crosslingual, table
from matcher.embed import Encoder
from matcher.engine import Engine
from tests.unit.fakes import FakeEncoder, fake_settings


def _jsonl(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _one_field(directory: Path, domain: str) -> Path:
    """A copy of the set restricted to one field's records and answers."""
    directory.mkdir(parents=True)
    kept: set[str] = set()
    for name in ("technologies.jsonl", "needs.jsonl"):
        records = [r for r in _jsonl(name) if r["domains"] == [domain]]
        kept |= {r["id"] for r in records}
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
        (directory / name).write_text("".join(lines), encoding="utf-8")
    qrels = (DATA / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    rows = [qrels[0]] + [line for line in qrels[1:] if line.split("\t")[0] in kept]
    (directory / "qrels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


def test_set_is_hard_by_construction() -> None:
    """Answers always across languages; same-field distractors in the need's own language."""
    techs = {t["id"]: t for t in _jsonl("technologies.jsonl")}
    needs = {n["id"]: n for n in _jsonl("needs.jsonl")}
    with (DATA / "qrels.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert {r["need_id"] for r in rows} == set(needs)
    assert all(r["technology_id"] in techs and r["grade"] in ("1", "2") for r in rows)
    answers: dict[str, set[str]] = {}
    for r in rows:
        answers.setdefault(r["need_id"], set()).add(r["technology_id"])
    assert Counter(n["language"] for n in needs.values()) == {"zh": 30, "en": 30}
    assert len({n["domains"][0] for n in needs.values()}) >= 8
    by_language = Counter(t["language"] for t in techs.values())
    assert abs(by_language["en"] - by_language["zh"]) <= len(techs) // 10
    for need_id, need in needs.items():
        assert sum(r["need_id"] == need_id and r["grade"] == "2" for r in rows) == 1
        assert all(techs[t]["language"] != need["language"] for t in answers[need_id])
        distractors = [
            t
            for t in techs.values()
            if t["language"] == need["language"]
            and t["domains"] == need["domains"]
            and t["id"] not in answers[need_id]
        ]
        assert len(distractors) >= 2, need_id


def test_every_record_imports_and_qrels_name_records(tmp_path: Path) -> None:
    """Through the engine's own import (a fake encoder: the records, not the model, are tested)."""
    data = load_set()
    assert all(len(data.queries(s, t)) == 30 for s, t in DIRECTIONS)
    engine = Engine(fake_settings(tmp_path / "home"), encoder=FakeEncoder())
    try:
        for kind in ("technologies", "needs"):
            result = engine.import_file(DATA / f"{kind}.jsonl", kind)
            assert result.created == len(_jsonl(f"{kind}.jsonl")) and not result.skipped
        stored = {
            kind: {row.ref for row in engine.view(kind).rows.values()}
            for kind in ("technologies", "needs")
        }
    finally:
        engine.close()
    assert set(data.qrels) <= stored["needs"]
    assert {t for answers in data.qrels.values() for t in answers} <= stored["technologies"]


def test_a_broken_set_is_refused(tmp_path: Path) -> None:
    for name in ("technologies.jsonl", "needs.jsonl"):
        (tmp_path / name).write_text((DATA / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "qrels.tsv").write_text(
        "need_id\ttechnology_id\tgrade\nXN-BAT-ZH1\tXT-NOPE\t2\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="unknown technology XT-NOPE"):
        load_set(tmp_path)


def test_benchmark_smoke(
    encoder: Encoder, use_encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One field's records, two needs per direction, the real models (embedding the whole set
    with MiniLM on a CPU takes longer than a smoke test should)."""
    monkeypatch.setattr("benchmarks.cache.OUT", tmp_path)  # a throw-away embedding cache
    subset = _one_field(tmp_path / "set", "06.03")
    report = run_crosslingual(subset, limit=2, encoders=(encoder, use_encoder))
    assert report["imported"] == {"technologies": 8, "needs": 6}
    assert report["pool"] == {"en": 4, "zh": 4}
    for source, target in DIRECTIONS:
        key = f"{source}->{target}"
        for ranking in RANKINGS:
            scores = report["directions"][key][ranking]
            assert scores["queries"] == 2
            assert all(0.0 <= scores[m] <= 1.0 for m in ("recall@1", "recall@10", "ndcg@10"))
        assert report["diagnosis"][key]["needs"] == 2
    assert len(report["needs"]) == 4
    for need in report["needs"]:
        assert need["engine_top"] and set(need["engine_top"][0]["components"]) >= {
            "semantic",
            "lexical",
        }
    assert "| engine |" in table(report) and "| dense |" in table(report)
