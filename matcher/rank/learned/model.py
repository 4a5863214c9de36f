"""Learned ranking: scikit-learn models on the shared features, chosen by grouped cross-validation.

Model families: pointwise logistic regression (relevant or not), pairwise logistic regression
on feature differences within a query (a linear RankNet), and gradient-boosted trees regressing
the grade (measured, but not in the default choice: see ``GRID``). Cross-validation folds split
by query (GroupKFold), so no query is ever scored by a model that saw it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from matcher.config import RankWeights
from matcher.rank.features import FEATURES, fixed_scores

K = 10  # nDCG@10 is what every comparison reports
_DISCOUNT = 1.0 / np.log2(np.arange(2, K + 2))


@dataclass
class LabelledSet:
    """Feature rows of many queries' candidates with their grades, grouped by query.

    Rows of one query are contiguous: ``starts[g]:starts[g + 1]``. ``ideal`` is each query's
    ideal DCG@10 from all its judgements, including relevant items the candidates missed.
    """

    matrix: np.ndarray
    grades: np.ndarray
    starts: np.ndarray
    ideal: np.ndarray
    query_ids: list[str]
    doc_ids: list[Any] = field(default_factory=list)

    @property
    def groups(self) -> np.ndarray:
        """Query index of every row."""
        return np.repeat(np.arange(len(self.query_ids)), np.diff(self.starts))

    def __len__(self) -> int:
        return len(self.query_ids)

    def subset(self, queries: Sequence[int] | np.ndarray) -> LabelledSet:
        """The rows of some queries (by index), in the given order."""
        queries = np.asarray(queries, dtype=np.int64)
        pieces = [np.arange(self.starts[q], self.starts[q + 1]) for q in queries]
        rows = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        sizes = np.diff(self.starts)[queries]
        return LabelledSet(
            matrix=self.matrix[rows],
            grades=self.grades[rows],
            starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            ideal=self.ideal[queries],
            query_ids=[self.query_ids[q] for q in queries],
            doc_ids=[self.doc_ids[r] for r in rows] if self.doc_ids else [],
        )

    @staticmethod
    def concat(parts: Sequence[LabelledSet]) -> LabelledSet:
        """Several sets as one (their queries side by side)."""
        sizes = np.concatenate([np.diff(p.starts) for p in parts])
        return LabelledSet(
            matrix=np.concatenate([p.matrix for p in parts]),
            grades=np.concatenate([p.grades for p in parts]),
            starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            ideal=np.concatenate([p.ideal for p in parts]),
            query_ids=[q for p in parts for q in p.query_ids],
            doc_ids=[d for p in parts for d in p.doc_ids],
        )


def ideal_dcg(grades: Sequence[float]) -> float:
    """DCG@10 of the best possible order of these grades."""
    best = sorted((g for g in grades if g > 0), reverse=True)[:K]
    return float(sum(g * d for g, d in zip(best, _DISCOUNT, strict=False)))


def ndcg_per_query(scores: np.ndarray, data: LabelledSet) -> np.ndarray:
    """nDCG@10 of every query when its candidates are ordered by ``scores`` (best first)."""
    out = np.zeros(len(data), dtype=np.float64)
    for g in range(len(data)):
        a, b = data.starts[g], data.starts[g + 1]
        if data.ideal[g] <= 0 or a == b:
            continue
        top = np.argsort(-scores[a:b], kind="stable")[:K]
        out[g] = float(data.grades[a:b][top] @ _DISCOUNT[: len(top)]) / data.ideal[g]
    return out


def mean_ndcg(scores: np.ndarray, data: LabelledSet) -> float:
    """Mean nDCG@10 over the queries that have something relevant to find."""
    judged = data.ideal > 0
    return float(ndcg_per_query(scores, data)[judged].mean()) if judged.any() else 0.0


# -- the model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """A model family and its settings: one candidate of the cross-validated choice."""

    kind: str  # logistic | pairwise | gbm
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def settings(self) -> dict[str, Any]:
        """The settings as a dict."""
        return dict(self.params)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.kind}({inner})"


def spec(kind: str, **params: Any) -> Spec:
    """A Spec from keyword settings."""
    return Spec(kind, tuple(sorted(params.items())))


# Feature sets a spec may use: "core" (the components, raw and relative lexical and semantic
# evidence, channel ranks, language, query length) or "all" (plus document length and scores
# standardised per query). "all" helped on sbir-dev, "core" on uspppm-dev (benchmarks/RESULTS.md),
# so cross-validation chooses.
FEATURE_SETS: dict[str, tuple[str, ...]] = {"core": FEATURES[:12], "all": FEATURES}

# The settings grouped cross-validation chooses among. Gradient-boosted trees ("gbm") stay
# available but out of the default choice: on both dev sets they lost to the linear models
# (benchmarks/RESULTS.md), and at serving time scikit-learn's tree prediction took ~20 ms per
# query on two busy cores against ~1 ms for a linear model.
GRID: tuple[Spec, ...] = (
    spec("logistic", C=0.1, features="core"),
    spec("logistic", C=0.1, features="all"),
    spec("logistic", C=10.0, features="core"),
    spec("logistic", C=10.0, features="all"),
    spec("pairwise", C=0.1, features="core"),
    spec("pairwise", C=0.1, features="all"),
)
TREES = spec("gbm", max_leaf_nodes=7, learning_rate=0.1, max_iter=100, features="all")


class LearnedRanker:
    """A fitted model that scores feature rows; linear models keep their weights readable."""

    def __init__(
        self,
        spec: Spec,
        features: Sequence[str],
        *,
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray | None = None,
        intercept: float = 0.0,
        estimator: Any = None,
    ) -> None:
        self.spec = spec
        self.features = tuple(features)
        self.columns = _columns(self.features)
        self.mean, self.scale = mean, scale
        self.coef, self.intercept, self.estimator = coef, intercept, estimator

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Columns are found by name when a saved model is loaded: the feature list may grow.
        self.__dict__.update(state)
        self.columns = _columns(self.features)

    @property
    def kind(self) -> str:
        """The model family."""
        return self.spec.kind

    def decision(self, matrix: np.ndarray) -> np.ndarray:
        """Raw ranking score of each row (higher is better)."""
        x = matrix[:, self.columns]
        if self.coef is not None:
            return ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(self.estimator.predict(x), dtype=np.float64)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Ranking score in (0, 1): the logistic of the raw score (same order)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision(matrix), -30.0, 30.0)))

    def moves(
        self, matrix: np.ndarray, rows: Sequence[int], *, limit: int = 2
    ) -> list[tuple[tuple[str, float], ...]]:
        """For each of ``rows``, the features that moved its raw score most from the average
        candidate of the same query, largest effect first: (feature, signed contribution)."""
        if not len(rows):
            return []
        x = matrix[:, self.columns]
        centre = x.mean(axis=0)
        picked = x[list(rows)]
        if self.coef is not None:
            effects = (picked - centre) / self.scale * self.coef
        else:
            # Trees have no weights: the effect of a feature is how much the score falls (or
            # rises) when that feature alone is set to the average candidate's value.
            n, d = picked.shape
            probes = np.repeat(picked, d, axis=0)
            probes[np.arange(n * d), np.tile(np.arange(d), n)] = np.tile(centre, n)
            base = np.asarray(self.estimator.predict(picked), dtype=np.float64)
            varied = np.asarray(self.estimator.predict(probes), dtype=np.float64).reshape(n, d)
            effects = base[:, None] - varied
        out = []
        for row in effects:
            order = np.argsort(-np.abs(row), kind="stable")[:limit]
            out.append(
                tuple((self.features[j], float(row[j])) for j in order if abs(row[j]) > 1e-9)
            )
        return out

    def weights(self) -> dict[str, float] | None:
        """Standardised feature weights of a linear model (None for trees)."""
        if self.coef is None:
            return None
        return {f: round(float(w), 4) for f, w in zip(self.features, self.coef, strict=True)}


def _columns(features: Sequence[str]) -> np.ndarray:
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(
            f"the model uses feature(s) this engine does not compute: {', '.join(unknown)}"
        )
    return np.array([FEATURES.index(f) for f in features], dtype=np.int64)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature carries no weight
    return mean, scale


def _pairs(data: LabelledSet, rng: np.random.Generator, per_query: int) -> tuple[np.ndarray, ...]:
    """Within each query, (better, worse) row pairs: every graded row against sampled others."""
    better, worse = [], []
    for g in range(len(data)):
        a, b = int(data.starts[g]), int(data.starts[g + 1])
        grades = data.grades[a:b]
        for i in np.flatnonzero(grades > 0):
            lower = np.flatnonzero(grades < grades[i])
            if not len(lower):
                continue
            take = rng.choice(lower, size=min(per_query, len(lower)), replace=False)
            better.extend([a + i] * len(take))
            worse.extend((a + take).tolist())
    return np.asarray(better, dtype=np.int64), np.asarray(worse, dtype=np.int64)


def fit(
    data: LabelledSet, model: Spec, features: Sequence[str] | None = None, *, seed: int = 0
) -> LearnedRanker:
    """Fit one model family with its settings on a labelled set.

    Args:
        features: the columns to use; default the spec's feature set ("all" when it names none).
    """
    from sklearn.linear_model import LogisticRegression

    if features is None:
        features = FEATURE_SETS[model.settings.get("features", "all")]
    columns = [FEATURES.index(f) for f in features]
    x = data.matrix[:, columns]
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    settings = model.settings
    if model.kind == "logistic":
        relevant = data.grades > 0
        if relevant.all() or not relevant.any():
            raise ValueError("training data needs both relevant and non-relevant examples")
        clf = LogisticRegression(C=settings["C"], max_iter=2000)
        # Graded judgements: a grade-3 example counts three times a grade-1 one.
        clf.fit(z, relevant, sample_weight=np.where(relevant, data.grades, 1.0))
        coef, intercept = clf.coef_[0], float(clf.intercept_[0])
        return LearnedRanker(
            model, features, mean=mean, scale=scale, coef=coef, intercept=intercept
        )
    if model.kind == "pairwise":
        rng = np.random.default_rng(seed)
        better, worse = _pairs(data, rng, per_query=settings.get("per_query", 20))
        if not len(better):
            raise ValueError("training data has no query with two different grades")
        diff = z[better] - z[worse]
        pairs = np.concatenate([diff, -diff])
        labels = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
        clf = LogisticRegression(C=settings["C"], max_iter=2000, fit_intercept=False)
        clf.fit(pairs, labels)
        return LearnedRanker(model, features, mean=mean, scale=scale, coef=clf.coef_[0])
    if model.kind == "gbm":
        from sklearn.ensemble import HistGradientBoostingRegressor

        est = HistGradientBoostingRegressor(
            max_leaf_nodes=settings["max_leaf_nodes"],
            learning_rate=settings["learning_rate"],
            max_iter=settings["max_iter"],
            early_stopping=False,
            random_state=seed,
        )
        est.fit(x, data.grades.astype(np.float64))
        return LearnedRanker(model, features, mean=mean, scale=scale, estimator=est)
    raise ValueError(f"unknown model family {model.kind!r}; use logistic, pairwise or gbm")


# -- choosing by grouped cross-validation -------------------------------------------------
@dataclass
class CrossValidation:
    """Grouped k-fold results: every spec's and the fixed weights' nDCG@10 per fold."""

    folds: int
    queries: int
    fixed: list[float]
    learned: dict[str, list[float]]
    best: str

    def summary(self) -> dict[str, Any]:
        """JSON-ready means and spreads."""
        return {
            "folds": self.folds,
            "queries": self.queries,
            "fixed_ndcg@10": round(float(np.mean(self.fixed)), 4),
            "learned_ndcg@10": {
                name: round(float(np.mean(v)), 4) for name, v in self.learned.items()
            },
            "best": self.best,
            "best_ndcg@10": round(float(np.mean(self.learned[self.best])), 4),
            "best_fold_ndcg@10": [round(v, 4) for v in self.learned[self.best]],
            "fixed_fold_ndcg@10": [round(v, 4) for v in self.fixed],
        }


def fold_indices(data: LabelledSet, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) query indices of grouped k-fold, deterministic."""
    queries = np.arange(len(data))
    folds = max(2, min(folds, len(data)))
    splitter = GroupKFold(n_splits=folds)
    return list(splitter.split(queries, groups=queries))


def cross_validate(
    data: LabelledSet,
    specs: Sequence[Spec] = GRID,
    *,
    folds: int = 5,
    weights: RankWeights | None = None,
    features: Sequence[str] | None = None,
) -> CrossValidation:
    """Score each spec (and the fixed weights) on held-out queries, fold by fold."""
    weights = weights or RankWeights()
    splits = fold_indices(data, folds)
    fixed: list[float] = []
    learned: dict[str, list[float]] = {str(s): [] for s in specs}
    for train_q, test_q in splits:
        train, test = data.subset(train_q), data.subset(test_q)
        fixed.append(mean_ndcg(fixed_scores(test.matrix, weights), test))
        for s in specs:
            try:
                model = fit(train, s, features)
            except ValueError:
                learned[str(s)].append(-math.inf)  # this fold cannot train the family
                continue
            learned[str(s)].append(mean_ndcg(model.decision(test.matrix), test))
    best = max(learned, key=lambda name: (float(np.mean(learned[name])), name))
    return CrossValidation(len(splits), len(data), fixed, learned, best)


def train(
    data: LabelledSet,
    specs: Sequence[Spec] = GRID,
    *,
    folds: int = 5,
    weights: RankWeights | None = None,
    features: Sequence[str] | None = None,
) -> tuple[LearnedRanker, CrossValidation]:
    """Choose the family and settings by grouped cross-validation, then fit it on all the data."""
    if len(data) < 2:
        raise ValueError("training needs at least two queries with judgements")
    cv = cross_validate(data, specs, folds=folds, weights=weights, features=features)
    chosen = next(s for s in specs if str(s) == cv.best)
    return fit(data, chosen, features), cv
