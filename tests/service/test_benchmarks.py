"""Small-scale smoke runs of both benchmarks, through their real command lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.beir import SHARED, load_beir

ROOT = Path(__file__).resolve().parents[2]
SBIR_DEV = SHARED / "sbir-dev"


def _run(args: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MATCHER_BENCH_OUT=str(out), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 real sbir-dev queries with their documents and 80 distractors, in the BEIR layout."""
    if not (SBIR_DEV / "corpus.jsonl").exists():
        pytest.skip(f"{SBIR_DEV} not found (the shared benchmark data sits beside the checkout)")
    ds = load_beir(SBIR_DEV, "dev", max_queries=20)
    wanted = {d for rel in ds.qrels.values() for d in rel}
    keep = list(wanted) + [d for d in ds.corpus if d not in wanted][:80]
    root = tmp_path_factory.mktemp("tiny-beir")
    (root / "qrels").mkdir()
    with (root / "corpus.jsonl").open("w") as f:
        for d in keep:
            f.write(
                json.dumps({"_id": d, **{k: ds.corpus[d][k] for k in ("title", "text")}}) + "\n"
            )
    with (root / "queries.jsonl").open("w") as f:
        for q, body in ds.queries.items():
            f.write(json.dumps({"_id": q, "text": body["text"]}) + "\n")
    with (root / "qrels" / "dev.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, rel in ds.qrels.items():
            for d, g in rel.items():
                f.write(f"{q}\t{d}\t{g}\n")
    return root


def test_quality_smoke(tiny_beir: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "out.json"
    result = _run(
        [
            "quality",
            "--dataset",
            str(tiny_beir),
            "--split",
            "dev",
            "--json",
            str(report_path),
            "--plots",
            str(tmp_path / "plots"),
            "--quiet",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["dataset"] == tiny_beir.name and report["split"] == "dev"
    systems = report["systems"]
    assert {"bm25", "tfidf", "dense", "hybrid", "techmatch"} <= set(systems)
    for scores in systems.values():
        assert set(scores) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100", "seconds"}
        assert all(0.0 <= scores[m] <= 1.0 for m in ("ndcg@10", "recall@10", "mrr@10"))
    # 20 queries over 100 documents: every system must find most intended documents.
    assert systems["techmatch"]["recall@10"] >= 0.8
    assert "| techmatch |" in result.stdout
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2


def test_learn_smoke(tiny_beir: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "learn.json"
    result = _run(
        [
            "learn",
            "--datasets",
            str(tiny_beir),
            "--part",
            "cv",
            "--folds",
            "2",
            "--inner-folds",
            "2",
            "--json",
            str(report_path),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    cv = report["cv"][tiny_beir.name]
    assert cv["queries"] == 20 and len(cv["learned_folds"]) == 2
    assert 0.0 <= cv["learned_ndcg@10"] <= 1.0 and 0.0 <= cv["fixed_ndcg@10"] <= 1.0
    assert len(cv["chosen_per_fold"]) == 2 and cv["every_spec_same_folds"]
    assert "| data set |" in result.stdout


def test_speed_smoke(tmp_path: Path) -> None:
    report_path = tmp_path / "speed.json"
    result = _run(
        [
            "speed",
            "--part",
            "indexes",
            "--sizes",
            "3000",
            "--queries",
            "30",
            "--synthetic",
            "--no-txtai",
            "--json",
            str(report_path),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    kinds = {row["kind"]: row for row in report["indexes"]}
    assert set(kinds) == {"flat", "hnsw", "ivf"}
    assert kinds["flat"]["recall@10"] == 1.0
    assert kinds["hnsw"]["recall@10"] > 0.9
    assert kinds["flat"]["single"]["p95_ms"] > 0
    assert report["machine"]["cores"] >= 1


def test_bilingual_smoke(tmp_path: Path) -> None:
    report_path = tmp_path / "bilingual.json"
    result = _run(
        [
            "bilingual",
            "--systems",
            "minilm,minilm|use+cal",
            "--max-needs",
            "3",
            "--distractors",
            "12",
            "--json",
            str(report_path),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["needs"] == {"en": 3, "zh": 3} and report["pool"]["zh"] > 0
    fused = report["systems"]["minilm|use+cal"]
    assert fused["multilingual"] == "use-multilingual-v3" and fused["calibration"]
    assert fused["verify_ok"]
    for direction in ("zh->en", "en->zh", "en->en", "zh->zh"):
        for ranking in ("engine", "dense"):
            scores = fused[direction][ranking]
            assert scores["queries"] == 3
            assert all(0.0 <= scores[m] <= 1.0 for m in ("recall@1", "recall@10", "ndcg@10"))
        # A small pool: the multilingual space finds every intended answer across languages.
        assert fused[direction]["dense"]["recall@10"] == 1.0
    assert "| minilm|use+cal |" in result.stdout


def test_routing_threshold_smoke(demo_engine) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.routing_threshold import measure

    report = measure(demo_engine, 0.55)
    assert report["needs"] == 80
    # the default threshold sits below every demo need's intended answer
    assert report["intended_below_threshold"] == 0
    assert report["intended_lowest"] >= 0.55
    assert set(report["off_topic_best"]) == {
        "watch shop",
        "party catering (en)",
        "party catering (zh)",
        "window cleaning",
    }


def test_scope_smoke(demo_engine) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.scope import measure

    before, after = measure(demo_engine, 0.0), measure(demo_engine, 0.15)
    assert before["needs_by_scope"] == {"international": 23, "local": 11, "national": 46}
    for scope in ("local", "national"):
        assert after["in_scope_top10"][scope] > before["in_scope_top10"][scope]
    assert after["in_scope_top10"]["international"] == 1.0
    assert after["intended@10"] == before["intended@10"] == 1.0
    assert demo_engine.settings.weights.scope_margin == 0.15  # restored
