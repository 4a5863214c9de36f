"""A fake encoder and a tiny catalogue, for engine rules tested without loading a model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from matcher.config import Settings
from matcher.domain import BrokerIn, NeedIn, TechnologyIn


class FakeEncoder:
    """Hashed bag of words: texts sharing words get close vectors; no model, no threads."""

    name = "fake-bag-of-words"
    dim = 256

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]{3,}", text.lower()):
                slot = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim
                out[i, slot] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def fake_settings(home: Path, database_url: str | None = None) -> Settings:
    """Settings of an English-only engine under ``home`` (no multilingual model), on a
    SQLite file there unless ``database_url`` names another store."""
    return Settings(
        home=home,
        database_url=database_url,
        multilingual_model="off",
        progress=False,
        ranker="fixed",
    )


TEXT = (
    "A low-power radar sensor chip for detecting driver fatigue in vehicles, with on-chip "
    "signal processing and an automotive-grade package for cabin monitoring systems."
)


def technologies() -> list[TechnologyIn]:
    """Three radar technologies: two in China, one in the Netherlands."""
    return [
        TechnologyIn(
            id=f"T-{i}",
            title=f"Radar sensor chip for driver fatigue detection {i}",
            description=TEXT,
            owner="Example University",
            domains=["01.07"],
            trl=6,
            region=region,
            keywords=["radar", "fatigue"],
        )
        for i, region in ((1, "CN-SH"), (2, "CN-ZJ"), (3, "NL"))
    ]


def need(ref: str = "N-1", **overrides: object) -> NeedIn:
    """A need the technologies answer well."""
    fields: dict[str, object] = dict(
        id=ref,
        enterprise="Example Motors",
        title="Driver fatigue detection with a radar sensor chip",
        description=TEXT,
        domains=["01.07"],
        trl_min=5,
        region_scope="international",
        home_region="CN-JS",
    )
    fields.update(overrides)
    return NeedIn(**fields)  # type: ignore[arg-type]


def broker(ref: str, **overrides: object) -> BrokerIn:
    """An advanced broker covering electronics in China and the EU."""
    fields: dict[str, object] = dict(
        id=ref,
        name=f"Broker {ref}",
        certificate_no=f"TM-{ref}",
        level="advanced",
        valid_until=date.today() + timedelta(days=365),
        domains=["01"],
        regions=["CN", "EU"],
        capacity=5,
    )
    fields.update(overrides)
    return BrokerIn(**fields)  # type: ignore[arg-type]
