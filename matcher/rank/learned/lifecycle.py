"""The learned ranker's lifecycle: train (labelled data or feedback), promote, roll back, status.

A model is only put in use by :func:`promote`, and only when it ranks the feedback held back
from training (one need in five) better than the ranking in use. Below
``MATCHER_RANKER_MIN_FEEDBACK`` judged matches nothing is trained from feedback and nothing is
promoted: the fixed weights stay in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matcher.rank.features import fixed_scores
from matcher.rank.learned.context import RankerContext
from matcher.rank.learned.model import GRID, LabelledSet, LearnedRanker, Spec, mean_ndcg, train
from matcher.rank.learned.registry import RankerError, RankerStore, store_for
from matcher.rank.learned.training import beir_set, feedback_counts, feedback_set, read_beir


@dataclass
class Trained:
    """A model just trained and saved."""

    model_id: str
    ranker: LearnedRanker
    meta: dict[str, Any]


def _too_little(events: int, minimum: int, what: str) -> RankerError:
    return RankerError(
        f"{events} judged match(es) stored; {what} needs at least {minimum} "
        "(MATCHER_RANKER_MIN_FEEDBACK), so the fixed weights stay in use"
    )


def train_from_dataset(
    engine: RankerContext,
    directory: Path,
    split: str = "dev",
    *,
    folds: int = 5,
    specs: tuple[Spec, ...] = GRID,
) -> Trained:
    """Train on a labelled data set in the BEIR layout and save the model (not promoted)."""
    data = read_beir(directory, split)
    if len(data.query_ids) < 2:
        raise RankerError(f"{directory}: fewer than two judged queries in split {split!r}")
    rows = beir_set(data, engine.encoder, engine.cache)
    ranker, cv = train(rows, specs, folds=folds, weights=engine.settings.weights)
    meta = {
        "source": "dataset",
        "training_data": {
            "dataset": data.name,
            "path": str(Path(directory).resolve()),
            "split": split,
            "queries": len(data.query_ids),
            "query_ids": data.query_ids,  # a benchmark refuses to score a model on these
        },
        "cross_validation": cv.summary(),
    }
    return Trained(store_for(engine.settings).save(ranker, meta), ranker, meta)


def train_from_feedback(
    engine: RankerContext, *, folds: int = 5, specs: tuple[Spec, ...] = GRID
) -> Trained:
    """Train on brokers' judgements (held-back needs excluded) and save the model."""
    minimum = engine.settings.ranker_min_feedback
    events, _ = feedback_counts(engine)
    if events < minimum:
        raise _too_little(events, minimum, "training from feedback")
    data = feedback_set(engine)
    if len(data.train) < 2:
        raise RankerError("feedback covers fewer than two needs outside the held-back ones")
    try:
        ranker, cv = train(data.train, specs, folds=folds, weights=engine.settings.weights)
    except ValueError as exc:
        raise RankerError(f"cannot train from this feedback: {exc}") from exc
    meta = {
        "source": "feedback",
        "training_data": {
            "judged_matches": data.events - data.held_back_events,
            "needs": len(data.train),
            "held_back_matches": data.held_back_events,
            "held_back_needs": len(data.held_back),
        },
        "cross_validation": cv.summary(),
    }
    return Trained(store_for(engine.settings).save(ranker, meta), ranker, meta)


def held_back_ndcg(engine: RankerContext, ranker: LearnedRanker | None, held: LabelledSet) -> float:
    """nDCG@10 of a ranker (None: the fixed weights) on the held-back judged matches."""
    if ranker is None:
        scores = fixed_scores(held.matrix, engine.settings.weights)
    else:
        scores = ranker.decision(held.matrix)
    return mean_ndcg(scores, held)


@dataclass
class Promotion:
    """The verdict of a promotion: the two rankings on held-back feedback and what happened."""

    model_id: str
    promoted: bool
    candidate_ndcg: float
    current_ndcg: float
    current: str  # the model in use before, or "fixed"
    held_back_matches: int
    message: str


def promote(engine: RankerContext, model_id: str | None = None) -> Promotion:
    """Put a model in use if it beats the ranking in use on held-back feedback.

    Raises:
        RankerError: no such model, or too little feedback to judge it (fixed weights stay).
    """
    store = store_for(engine.settings)
    models = store.models()
    if model_id is None:
        if not models:
            raise RankerError("no trained ranker; run `matcher ranker train` first")
        model_id = models[-1]["id"]
    candidate = store.load(model_id)
    minimum = engine.settings.ranker_min_feedback
    events, _ = feedback_counts(engine)
    if events < minimum:
        raise _too_little(events, minimum, "promoting a learned ranker")
    data = feedback_set(engine)
    held = data.held_back
    if not (held.ideal > 0).any():
        raise RankerError(
            "no held-back need has an accepted match yet, so no ranking can be judged; "
            "the ranking in use stays"
        )
    current_id = store.active_id()
    if current_id == model_id:
        raise RankerError(f"{model_id} is already in use")
    current = store.load(current_id) if current_id else None
    new_score = held_back_ndcg(engine, candidate, held)
    old_score = held_back_ndcg(engine, current, held)
    won = new_score > old_score
    verdict = {
        "against": current_id or "fixed",
        "candidate_ndcg@10": round(new_score, 4),
        "current_ndcg@10": round(old_score, 4),
        "held_back_matches": data.held_back_events,
        "promoted": won,
    }
    store.update_meta(model_id, held_back_evaluation=verdict)
    if won:
        store.promote(model_id)
        message = (
            f"promoted {model_id}: nDCG@10 {new_score:.4f} on {data.held_back_events} held-back "
            f"judged matches against {old_score:.4f} for {current_id or 'the fixed weights'}"
        )
    else:
        message = (
            f"not promoted: {model_id} scores nDCG@10 {new_score:.4f} on "
            f"{data.held_back_events} held-back judged matches, no better than "
            f"{old_score:.4f} for {current_id or 'the fixed weights'}, which stay in use"
        )
    return Promotion(
        model_id, won, new_score, old_score, current_id or "fixed", data.held_back_events, message
    )


def rollback(engine: RankerContext) -> str | None:
    """Withdraw the model in use; returns the id now in use (None: the fixed weights)."""
    return store_for(engine.settings).rollback()


def status(engine: RankerContext) -> dict[str, Any]:
    """What ranks now, how much feedback there is, and every saved model."""
    store: RankerStore = store_for(engine.settings)
    events, held_back = feedback_counts(engine)
    active = store.active_id()
    mode = "fixed weights" if engine.settings.ranker == "fixed" or not active else active
    models = []
    for meta in store.models():
        meta = {k: v for k, v in meta.items() if k != "training_data"} | {
            "training_data": {
                k: v for k, v in meta.get("training_data", {}).items() if k != "query_ids"
            }
        }
        meta["in_use"] = meta["id"] == active and engine.settings.ranker != "fixed"
        models.append(meta)
    return {
        "ranking": mode,
        "setting": engine.settings.ranker,
        "judged_matches": events,
        "held_back_matches": held_back,
        "min_feedback": engine.settings.ranker_min_feedback,
        "history": store.history(),
        "models": models,
    }
