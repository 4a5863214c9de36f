"""The cross-encoder re-ranker trained here: a tiny training run, a save/load round trip, and its
grouped cross-validation end to end on a tiny BEIR set (real model, CPU, under a minute)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_benchmarks import tiny_beir  # noqa: F401  (20 real sbir-dev queries, 100 documents)

from matcher.rank.cross import CrossReranker, training_pairs

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [
    ("solar cell coating", "anti-reflective coating for photovoltaic panels"),
    ("solar cell coating", "a sourdough bread recipe"),
    ("battery thermal runaway", "detecting overheating in lithium-ion battery packs"),
    ("battery thermal runaway", "medieval church architecture"),
    ("water desalination membrane", "reverse osmosis membranes that remove salt from seawater"),
    ("water desalination membrane", "football league results"),
]
LABELS = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def _margin(scores: np.ndarray) -> float:
    labels = np.array(LABELS)
    return float(scores[labels == 1].mean() - scores[labels == 0].mean())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[CrossReranker, float, float]:
    model = CrossReranker(max_length=64, seed=0)
    before = _margin(model.scores(PAIRS))
    stats = model.train(PAIRS, LABELS, epochs=4, batch_size=3, learning_rate=1e-4)
    assert stats.steps == 8 and stats.pairs == 6
    return model, before, _margin(model.scores(PAIRS))


def test_training_moves_scores_toward_labels(trained: tuple[CrossReranker, float, float]) -> None:
    model, before, after = trained
    assert after > before + 0.2, (before, after)
    scores = model.scores(PAIRS)
    for k in range(0, len(PAIRS), 2):  # every query: its positive above its negative
        assert scores[k] > scores[k + 1]
    # Mixing in a first-stage score: alpha 0 is the cross-encoder alone, standardised.
    texts = [d for _, d in PAIRS[:2]]
    alone = model.rerank("solar cell coating", texts, [0.0, 1.0], alpha=0.0)
    mixed = model.rerank("solar cell coating", texts, [0.0, 1.0], alpha=100.0)
    assert alone[0] > alone[1] and mixed[1] > mixed[0]


def test_save_load_round_trip(trained: tuple[CrossReranker, float, float], tmp_path: Path) -> None:
    model, _, _ = trained
    model.alpha = 0.5
    folder = model.save(tmp_path / "reranker")
    loaded = CrossReranker.load(folder)
    assert loaded.alpha == 0.5 and loaded.max_length == 64 and loaded.trained["steps"] == 8
    np.testing.assert_allclose(loaded.scores(PAIRS), model.scores(PAIRS), atol=1e-5)


def test_training_pairs_hard_negatives() -> None:
    texts = {d: d.upper() for d in "abcdef"}
    pairs, labels = training_pairs(
        "q", {"a": 3.0, "b": 1.0}, list("abcdef"), texts=texts, negatives=2, depth=4
    )
    assert labels[:2] == [1.0, 1 / 3] and labels[2:] == [0.0, 0.0]
    assert {d for _, d in pairs[2:]} <= {"C", "D"}  # unjudged, from the engine's top 4


def test_rerank_cv_end_to_end(tiny_beir: Path, tmp_path: Path) -> None:  # noqa: F811
    report_path = tmp_path / "rerank.json"
    env = dict(os.environ, MATCHER_BENCH_OUT=str(tmp_path), HF_HUB_OFFLINE="1")
    args = ["--dataset", str(tiny_beir), "--folds", "2", "--top", "3", "--max-length", "32"]
    args += ["--max-queries", "8", "--negatives", "1", "--positives", "1"]
    args += ["--json", str(report_path)]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.rerank", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["queries"] == 8 and report["folds"] == 2
    for key in ("engine_ndcg@10", "cross_ndcg@10", "mixed_ndcg@10", "oracle_top_ndcg@10"):
        assert 0.0 <= report[key] <= 1.0
    assert report["oracle_top_ndcg@10"] >= report["engine_ndcg@10"]
    assert len(report["train_seconds_per_fold"]) == 2 and report["latency_ms_p50"] > 0
    assert "| data set |" in result.stdout
