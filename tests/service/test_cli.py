"""The ``matcher`` command line, run in-process with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matcher import config
from matcher.cli import app
from tests.catalogue import NEEDS, TECHNOLOGIES

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MATCHER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MATCHER_PROGRESS", "false")
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    yield tmp_path / "home"
    config.get_settings.cache_clear()


def test_import_index_and_match_json(home: Path, tmp_path: Path, encoder: object) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in TECHNOLOGIES), encoding="utf-8")
    result = runner.invoke(app, ["import", "technologies", str(path)])
    assert result.exit_code == 0, result.output
    assert "6 new" in result.output

    result = runner.invoke(
        app,
        [
            "match",
            "--text",
            "rust protection for offshore steel",
            "--domain",
            "04.06",
            "--min-trl",
            "5",
            "--region",
            "CN-ZJ",
            "--top",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert len(items) == 3 and items[0]["technology_ref"] == "T-2"
    for item in items:
        assert {"technology_id", "score", "components", "explanation"} <= set(item)
        assert {"semantic", "domain", "readiness", "region"} <= set(item["components"])

    needs = tmp_path / "n.jsonl"
    needs.write_text("\n".join(json.dumps(n) for n in NEEDS), encoding="utf-8")
    assert runner.invoke(app, ["import", "needs", str(needs)]).exit_code == 0
    # The other way round the ranked side is the need, and that is what is listed.
    result = runner.invoke(app, ["match", "--technology", "T-4", "--top", "1"])
    assert result.exit_code == 0 and "N-2" in result.stdout and "T-4" not in result.stdout

    assert runner.invoke(app, ["index", "verify"]).exit_code == 0
    (home / "index" / "technologies" / "meta.json").write_text("{}", encoding="utf-8")
    bad = runner.invoke(app, ["index", "verify"])
    assert bad.exit_code == 1 and "matcher index build" in bad.output
    assert runner.invoke(app, ["index", "build"]).exit_code == 0
    assert runner.invoke(app, ["index", "verify"]).exit_code == 0
    stats = json.loads(runner.invoke(app, ["index", "stats"]).stdout)
    assert stats[0]["count"] == 6 and stats[1]["count"] == 2 and stats[0]["kind"] == "flat"


def test_bad_input_gives_clear_errors(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(dict(TECHNOLOGIES[0], trl=12)), encoding="utf-8")
    result = runner.invoke(app, ["import", "technologies", str(path)])
    assert result.exit_code == 2
    assert "line 1: trl" in result.output and "nothing was imported" in result.output
    result = runner.invoke(app, ["match", "--text", "x", "--domain", "99"])
    assert result.exit_code == 2 and "unknown domain code(s): 99" in result.output
    result = runner.invoke(app, ["match"])
    assert result.exit_code == 2 and "exactly one of" in result.output
    result = runner.invoke(app, ["import", "widgets", str(path)])
    assert result.exit_code == 2 and "unknown kind" in result.output
