"""What training and the learned ranker's lifecycle need of the engine, as a protocol.

``matcher.engine.Engine`` provides it; tests and tools can hand in anything else that does.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from matcher.config import Settings
from matcher.embed import EmbeddingCache, Encoder
from matcher.rank.score import CandidateFeatures


class RankerContext(Protocol):
    """The settings, the store, the encoder with its cache, and serving's feature rows."""

    @property
    def settings(self) -> Settings:
        """Where models are kept and how much feedback a promotion needs."""
        ...

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The store, where brokers' judgements are read."""
        ...

    @property
    def cache(self) -> EmbeddingCache:
        """The embedding cache (labelled data sets are embedded through it)."""
        ...

    @property
    def encoder(self) -> Encoder:
        """The primary encoder."""
        ...

    def need_features(self, key: int | str) -> CandidateFeatures:
        """A stored need's candidates as serving ranks them, with their feature rows."""
        ...
