"""The learned ranker: shared features, training, promotion, rollback, the fixed-weight default."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

import matcher.rank.learned.training
import matcher.rank.score
from matcher import config
from matcher.catalog import active_texts
from matcher.domain import Match, Side
from matcher.rank import features
from matcher.rank.features import FEATURES, candidate_features
from matcher.rank.learned import lifecycle as learn
from matcher.rank.learned.model import LabelledSet, LearnedRanker, ideal_dcg, mean_ndcg, spec, train
from matcher.rank.learned.registry import RankerError, active_ranker, store_for
from matcher.rank.learned.training import feedback_grades, flat_pools, need_features
from matcher.rank.pair import combine, region_feature
from matcher.store import repo
from matcher.store.db import transaction
from matcher.store.models import BrokerRow, DealRow, FeedbackRow, RoutedMatchRow
from matcher.store.repo.routing import routed_row
from tests.conftest import make_settings

# Text-derived columns: the same in the serving and the labelled-data paths.
TEXT_COLUMNS = [
    FEATURES.index(f)
    for f in (
        "semantic",
        "lexical",
        "bm25",
        "semantic_gap",
        "lexical_gap",
        "dense_rr",
        "lexical_rr",
        "query_terms",
        "doc_terms",
        "semantic_z",
        "bm25_z",
    )
]


# -- one feature function ------------------------------------------------------------------
def test_serving_and_training_call_the_same_feature_function(
    demo_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert matcher.rank.score.candidate_features is features.candidate_features
    assert matcher.rank.learned.training.candidate_features is features.candidate_features
    calls: list[np.ndarray] = []

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(out := candidate_features(**kwargs))
        return out

    monkeypatch.setattr(matcher.rank.score, "candidate_features", spy)
    demo_engine.match_need("N-003", top=5, persist=False)
    assert len(calls) == 1 and calls[0].shape[1] == len(FEATURES)


def fixed_score(engine, match, need, tech, *, mixed: bool) -> float:  # type: ignore[no-untyped-def]
    """What ``rank.combine`` gives a match: lexical missing for every candidate of a pool that
    mixes languages (equal evidence), counted in a pool of the query's language alone; less
    the scope margin for a technology outside the need's scope."""
    weights = engine.settings.weights
    score = combine(match.components, weights, same_language=not mixed)
    if not region_feature(need, tech, engine.taxonomy).in_scope:
        score = max(score - weights.scope_margin, 0.0)
    return score


def test_fixed_weights_stay_the_default_to_the_last_bit(demo_engine) -> None:
    assert active_ranker(demo_engine.settings) is None
    languages = set()
    # N-001 is written in Chinese: its English candidates are scored across languages.
    for ref in ("N-001", "N-010", "N-042"):
        matches = demo_engine.match_need(ref, top=10, persist=False)
        need = next(r for r in demo_engine.view("needs").rows.values() if r.ref == ref)
        rows = demo_engine.view("technologies").rows
        mixed = any(rows[m.technology_id].language != need.language for m in matches)
        for m in matches:
            tech = rows[m.technology_id]
            assert m.score == fixed_score(demo_engine, m, need, tech, mixed=mixed)
            assert "learned ranking" not in m.explanation
            languages.add(demo_engine.view("technologies").rows[m.technology_id].language)
    assert languages == {"en", "zh"}


def test_serving_rows_equal_the_labelled_data_path_on_the_same_pairs(
    tmp_path: Path, demo_home_template: Path, encoder: object
) -> None:
    from matcher.engine import Engine

    # One dense space (no multilingual channel), as the labelled-data path has.
    shutil.copytree(demo_home_template, tmp_path / "home")
    engine = Engine(
        make_settings(tmp_path / "home", multilingual_model="off"),
        encoder=encoder,  # type: ignore[arg-type]
    )
    with engine.sessions() as session:
        need = next(n for n in repo.active_needs(session) if not (n.trl_hard or n.region_hard))
    served = need_features(engine, need.id)
    view = engine.view("technologies")
    ids = list(view.rows)
    texts = dict(active_texts(engine.sessions, Side.technologies))
    index = engine.indexes["technologies"].index
    doc_vectors = np.stack([index.vector(i) for i in ids])
    need_vector = engine.indexes["needs"].index.vector(need.id)
    (pool,) = flat_pools(
        doc_vectors=doc_vectors,
        query_vectors=need_vector[None, :],
        query_texts=[repo.need_text(need)],
        doc_texts=[texts[i] for i in ids],
    )
    offline = {ids[p]: row for p, row in zip(pool.ids, pool.matrix, strict=True)}
    assert set(offline) == set(served.ids)  # the same candidates ...
    for tech_id, row in zip(served.ids, served.matrix, strict=True):  # ... the same vectors
        np.testing.assert_allclose(row[TEXT_COLUMNS], offline[tech_id][TEXT_COLUMNS], atol=1e-5)
    engine.close()


# -- learning ------------------------------------------------------------------------------
def _planted(n_queries: int = 80, per_query: int = 30, seed: int = 1) -> LabelledSet:
    """Random candidates whose relevance is planted in the region feature alone."""
    rng = np.random.default_rng(seed)
    rows, grades, ideal = [], [], []
    for _ in range(n_queries):
        m = candidate_features(
            cosine=rng.uniform(0.2, 0.8, per_query),
            bm25=rng.uniform(0, 10, per_query),
            dense_rank=rng.permutation(per_query) + 1,
            lexical_rank=rng.permutation(per_query) + 1,
            domain=rng.uniform(0, 1, per_query),
            readiness=rng.uniform(0, 1, per_query),
            region=rng.uniform(0, 1, per_query),
            query_terms=12,
            doc_terms=rng.uniform(50, 200, per_query),
        )
        g = (m[:, FEATURES.index("region")] > 0.8).astype(float) * 2
        rows.append(m)
        grades.append(g)
        ideal.append(ideal_dcg(g.tolist()))
    sizes = [per_query] * n_queries
    return LabelledSet(
        np.concatenate(rows),
        np.concatenate(grades),
        np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        np.asarray(ideal),
        [f"q{i}" for i in range(n_queries)],
    )


def test_a_planted_preference_is_learned() -> None:
    data = _planted()
    ranker, cv = train(data, (spec("logistic", C=1.0, features="core"),), folds=4)
    summary = cv.summary()
    assert summary["best_ndcg@10"] > summary["fixed_ndcg@10"] + 0.3
    weights = ranker.weights()
    assert weights is not None and max(weights, key=weights.get) == "region"  # type: ignore[arg-type]
    fresh = _planted(seed=7)
    assert mean_ndcg(ranker.decision(fresh.matrix), fresh) > 0.95
    # The explanation names what moved a result most: region, upwards, for the best one.
    best = int(np.argmax(ranker.decision(fresh.matrix[:30])))
    assert ranker.moves(fresh.matrix[:30], [best])[0][0][0] == "region"


# -- lifecycle on the demo data ------------------------------------------------------------
def _seed(engine, accept: Callable[[Match], bool], *, needs: int | None = None) -> int:  # type: ignore[no-untyped-def]
    """Route each need's top ten to a broker and record a verdict from ``accept``."""
    with engine.sessions() as session:
        need_ids = [n.id for n in repo.active_needs(session)][:needs]
        broker = session.scalar(select(BrokerRow.id))
    shown = {n: engine.match_need(n, top=10, persist=False) for n in need_ids}
    with transaction(engine.sessions) as session:
        for need_id, matches in shown.items():
            for m in matches:
                routed = routed_row(m, need_id=need_id, broker_id=broker, reason="test")
                session.add(routed)
                session.flush()
                ok = accept(m)
                session.add(
                    FeedbackRow(
                        routed_id=routed.id,
                        broker_id=broker,
                        decision="accept" if ok else "decline",
                        reason_code=None if ok else "region_mismatch",
                    )
                )
    return sum(len(m) for m in shown.values())


def likes_nearby(m: Match) -> bool:
    """The planted preference: brokers take only matches from the need's own region."""
    return m.components.region >= 0.85


@pytest.fixture
def seeded(service_engine):  # type: ignore[no-untyped-def]
    events = _seed(service_engine, likes_nearby)
    service_engine.settings.ranker_min_feedback = 100
    assert events >= 100
    return service_engine


def test_promotion_serving_refusal_and_rollback(seeded) -> None:
    engine = seeded
    store = store_for(engine.settings)
    trained = learn.train_from_feedback(engine, folds=3)
    assert store.active_id() is None and active_ranker(engine.settings) is None
    meta = store.meta(trained.model_id)
    assert meta["source"] == "feedback" and meta["features"] and meta["cross_validation"]
    assert meta["training_data"]["held_back_matches"] > 0

    verdict = learn.promote(engine, trained.model_id)
    assert verdict.promoted, verdict.message
    assert verdict.candidate_ndcg > verdict.current_ndcg
    assert active_ranker(engine.settings) is not None

    # Served by the learned model: components kept, the explanation says what moved it.
    matches = engine.match_need("N-001", top=5, persist=False)
    assert all(0 < m.score < 1 for m in matches)
    assert all(0 <= m.components.region <= 1 for m in matches)
    assert all("learned ranking:" in m.explanations["en"] for m in matches)
    assert all("学习排序" in m.explanations["zh"] for m in matches)

    # A worse model (the learned preference turned upside down) is refused.
    good = store.load(trained.model_id)
    assert good.coef is not None, "a linear model was expected on this feedback"
    worse = LearnedRanker(
        good.spec, good.features, mean=good.mean, scale=good.scale, coef=-good.coef
    )
    worse_id = store.save(worse, {"source": "test"})
    refused = learn.promote(engine, worse_id)
    assert not refused.promoted and store.active_id() == trained.model_id

    # Rollback restores the one promoted before; then the fixed weights.
    store.promote(worse_id)  # forced, as if an older gate had let it through
    assert learn.rollback(engine) == trained.model_id
    assert learn.rollback(engine) is None
    assert active_ranker(engine.settings) is None
    matches = engine.match_need("N-001", top=5, persist=False)
    rows = engine.view("technologies").rows
    mixed = any(rows[m.technology_id].language != "zh" for m in matches)  # N-001 is Chinese
    need = next(r for r in engine.view("needs").rows.values() if r.ref == "N-001")
    for m in matches:
        assert m.score == fixed_score(engine, m, need, rows[m.technology_id], mixed=mixed)
    with pytest.raises(RankerError, match="fixed weights already rank"):
        learn.rollback(engine)


def test_too_little_feedback_keeps_the_fixed_weights(service_engine) -> None:
    engine = service_engine
    events = _seed(engine, likes_nearby, needs=3)
    assert 0 < events < engine.settings.ranker_min_feedback
    with pytest.raises(RankerError, match="fixed weights stay in use"):
        learn.train_from_feedback(engine)
    # A model from elsewhere cannot be promoted on so little feedback either.
    data = _planted()
    ranker, _ = train(data, (spec("logistic", C=1.0, features="core"),), folds=2)
    model_id = store_for(engine.settings).save(ranker, {"source": "test"})
    with pytest.raises(RankerError, match="fixed weights stay in use"):
        learn.promote(engine, model_id)
    assert active_ranker(engine.settings) is None
    assert learn.status(engine)["ranking"] == "fixed weights"


def test_feedback_grades_from_verdicts_and_deals(service_engine) -> None:
    engine = service_engine
    _seed(engine, lambda m: m.rank <= 2, needs=1)
    with engine.sessions() as session:
        routed = list(session.scalars(select(RoutedMatchRow).order_by(RoutedMatchRow.rank)))
    with transaction(engine.sessions) as session:
        # rank 1 accepted then agreed (3); rank 2 accepted then lost (1); rank 3 declined (0);
        # rank 4 declined for lack of capacity: says nothing about the pair, left out.
        for r, stage in ((routed[0], "agreed"), (routed[1], "closed_lost")):
            session.add(
                DealRow(
                    routed_id=r.id,
                    broker_id=r.broker_id,
                    need_id=r.need_id,
                    technology_id=r.technology_id,
                    stage=stage,
                )
            )
        # one verdict per item and decision: rank 4's decline gives that reason instead
        session.execute(
            update(FeedbackRow)
            .where(FeedbackRow.routed_id == routed[3].id, FeedbackRow.decision == "decline")
            .values(reason_code="no_capacity")
        )
    grades = feedback_grades(engine)
    pair = lambda r: (r.need_id, r.technology_id)  # noqa: E731
    assert grades[pair(routed[0])] == 3 and grades[pair(routed[1])] == 1
    assert grades[pair(routed[2])] == 0 and pair(routed[3]) not in grades
    assert len(grades) == len(routed) - 1


# -- the command line ------------------------------------------------------------------------
runner = CliRunner()


@pytest.fixture
def cli_home(
    tmp_path: Path, demo_home_template: Path, monkeypatch: pytest.MonkeyPatch, encoder: object
) -> Path:
    """A data directory with the demo and planted feedback, used through ``matcher``."""
    from matcher.engine import Engine

    home = tmp_path / "home"
    shutil.copytree(demo_home_template, home)
    engine = Engine(make_settings(home), encoder=encoder)  # type: ignore[arg-type]
    _seed(engine, likes_nearby)
    engine.close()
    for key, value in {
        "MATCHER_HOME": str(home),
        "MATCHER_PROGRESS": "false",
        "MATCHER_RANKER_MIN_FEEDBACK": "100",
        "MATCHER_ENCODER_BACKEND": "torch",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    yield home
    config.get_settings.cache_clear()


def _tiny_beir(root: Path, engine_home: Path) -> Path:
    """Ten demo needs as queries over the demo technologies, judged by the intended answers."""
    from matcher.engine import Engine

    engine = Engine(make_settings(engine_home))
    intended = engine.demo_intended()
    view = engine.view("technologies")
    texts = dict(active_texts(engine.sessions, Side.technologies))
    with engine.sessions() as session:
        needs = {n.ref: repo.need_text(n) for n in repo.active_needs(session)}
    engine.close()
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as f:
        for row in view.rows.values():
            f.write(json.dumps({"_id": row.ref, "title": "", "text": texts[row.id]}) + "\n")
    refs = sorted(intended)[:10]
    with (root / "queries.jsonl").open("w") as f:
        for ref in refs:
            f.write(json.dumps({"_id": ref, "text": needs[ref]}) + "\n")
    with (root / "qrels" / "dev.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for ref in refs:
            for tech, grade in intended[ref].items():
                f.write(f"{ref}\t{tech}\t{grade}\n")
    return root


def test_ranker_commands(cli_home: Path, tmp_path: Path) -> None:
    from matcher.cli import app

    result = runner.invoke(app, ["ranker", "train"])
    assert result.exit_code == 2 and "exactly one of" in result.output

    result = runner.invoke(app, ["ranker", "train", "--from-feedback", "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "saved r-" in result.output and "fixed weights" in result.output
    model_id = result.output.split("saved ", 1)[1].split(":", 1)[0]

    status = json.loads(runner.invoke(app, ["ranker", "status", "--json"]).output)
    assert status["ranking"] == "fixed weights" and status["judged_matches"] >= 100
    assert [m["id"] for m in status["models"]] == [model_id]

    result = runner.invoke(app, ["ranker", "promote", model_id])
    assert result.exit_code == 0 and "promoted" in result.output, result.output
    result = runner.invoke(app, ["ranker", "status"])
    assert f"ranking: {model_id}" in result.output and f"* {model_id}" in result.output

    result = runner.invoke(app, ["match", "--need", "N-001", "--top", "3", "--lang", "en"])
    assert result.exit_code == 0 and "learned ranking:" in result.output, result.output

    result = runner.invoke(app, ["ranker", "rollback"])
    assert result.exit_code == 0 and "fixed weights" in result.output
    result = runner.invoke(app, ["ranker", "rollback"])
    assert result.exit_code == 2 and "fixed weights already rank" in result.output

    data = _tiny_beir(tmp_path / "tiny", cli_home)
    result = runner.invoke(
        app, ["ranker", "train", "--dataset", str(data), "--split", "dev", "--folds", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["cross_validation"]["queries"] == 10
    meta = store_for(config.get_settings()).meta(report["id"])
    assert (
        meta["training_data"]["dataset"] == "tiny" and len(meta["training_data"]["query_ids"]) == 10
    )
