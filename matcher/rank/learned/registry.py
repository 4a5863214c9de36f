"""Learned rankers on disk: each model with its metadata, which one is promoted, rollback.

Layout under ``$MATCHER_HOME/rankers/``::

    <model id>/model.joblib     the fitted LearnedRanker
    <model id>/meta.json        features, training data, date, cross-validated metrics, ...
    registry.json               {"promoted": [older ids ..., current id]}

Serving asks :func:`active_ranker`, which re-reads the registry only when the file changed, so a
promotion or rollback from the command line reaches a running service at its next query.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matcher.config import Settings
from matcher.errors import InvalidInputError
from matcher.rank.learned.model import LearnedRanker

log = logging.getLogger(__name__)


class RankerError(InvalidInputError):
    """A ranker operation that cannot be done (unknown model, nothing to roll back to, ...)."""


class RankerStore:
    """The saved models of one data directory and the promotion history."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def registry_path(self) -> Path:
        """Where the promotion history is kept."""
        return self.root / "registry.json"

    # -- models --------------------------------------------------------------------------
    def save(self, ranker: LearnedRanker, meta: dict[str, Any]) -> str:
        """Save a trained model with its metadata; returns the new model's id."""
        import joblib

        now = datetime.now(UTC)
        model_id = f"r-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        folder = self.root / model_id
        folder.mkdir(parents=True)
        joblib.dump(ranker, folder / "model.joblib")
        full = {
            "id": model_id,
            "created": now.isoformat(timespec="microseconds"),
            "kind": ranker.kind,
            "settings": ranker.spec.settings,
            "features": list(ranker.features),
            "weights": ranker.weights(),
            **meta,
        }
        _write_json(folder / "meta.json", full)
        return model_id

    def load(self, model_id: str) -> LearnedRanker:
        """A saved model by id."""
        import joblib

        path = self.root / model_id / "model.joblib"
        if not path.exists():
            raise RankerError(f"no ranker {model_id!r}; `matcher ranker status` lists them")
        ranker = joblib.load(path)
        if not isinstance(ranker, LearnedRanker):
            raise RankerError(f"{path} does not hold a ranker")
        return ranker

    def meta(self, model_id: str) -> dict[str, Any]:
        """A saved model's metadata."""
        path = self.root / model_id / "meta.json"
        if not path.exists():
            raise RankerError(f"no ranker {model_id!r}; `matcher ranker status` lists them")
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def update_meta(self, model_id: str, **fields: Any) -> None:
        """Add or replace metadata fields of a saved model."""
        meta = self.meta(model_id)
        meta.update(fields)
        _write_json(self.root / model_id / "meta.json", meta)

    def models(self) -> list[dict[str, Any]]:
        """Metadata of every saved model, oldest first."""
        if not self.root.exists():
            return []
        found = [json.loads(p.read_text(encoding="utf-8")) for p in self.root.glob("*/meta.json")]
        return sorted(found, key=lambda m: (m["created"], m["id"]))

    # -- promotion history ---------------------------------------------------------------
    def history(self) -> list[str]:
        """Promoted model ids, oldest first; the last one is in use."""
        if not self.registry_path.exists():
            return []
        return list(json.loads(self.registry_path.read_text(encoding="utf-8"))["promoted"])

    def active_id(self) -> str | None:
        """The promoted model in use, or None: the fixed weights."""
        history = self.history()
        return history[-1] if history else None

    def promote(self, model_id: str) -> None:
        """Put a saved model in use (the caller has checked that it earned it)."""
        self.meta(model_id)  # refuses unknown ids
        history = [m for m in self.history() if m != model_id] + [model_id]
        self._write_history(history)

    def rollback(self) -> str | None:
        """Withdraw the model in use; the one promoted before it (or the fixed weights) returns.

        Returns:
            The id now in use, None for the fixed weights.
        """
        history = self.history()
        if not history:
            raise RankerError("no learned ranker is in use: the fixed weights already rank")
        history.pop()
        self._write_history(history)
        return history[-1] if history else None

    def _write_history(self, history: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.registry_path, {"promoted": history})
        _ACTIVE.pop(self.registry_path, None)  # this process sees the change at once


def _write_json(path: Path, value: Any) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def store_for(settings: Settings) -> RankerStore:
    """The ranker store of a data directory."""
    return RankerStore(settings.home / "rankers")


_ACTIVE: dict[Path, tuple[tuple[int, int, int], LearnedRanker | None]] = {}
_ACTIVE_LOCK = threading.Lock()


def active_ranker(settings: Settings) -> LearnedRanker | None:
    """The promoted model serving uses, or None when the fixed weights rank.

    ``MATCHER_RANKER=fixed`` turns learned ranking off. The registry is re-read only when its
    modification time changes (one ``stat`` per query otherwise).
    """
    if settings.ranker == "fixed":
        return None
    store = store_for(settings)
    try:
        stat = store.registry_path.stat()
    except FileNotFoundError:
        return None
    # Every write replaces the file, so the inode changes even within one clock tick.
    stamp = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
    cached = _ACTIVE.get(store.registry_path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with _ACTIVE_LOCK:
        try:
            model_id = store.active_id()
            ranker = store.load(model_id) if model_id else None
        except Exception as exc:  # noqa: BLE001 - a broken model must not stop matching
            # Serving goes on with the fixed weights; `matcher ranker status` shows the model.
            log.warning("learned ranker unusable (%s): ranking with the fixed weights", exc)
            ranker = None
        _ACTIVE[store.registry_path] = (stamp, ranker)
        return ranker
