"""The engine's two encoders (primary and multilingual), loaded on first use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matcher.embed.base import Encoder, encode_queries
from matcher.embed.registry import get_encoder


class Encoders:
    """The primary encoder and the multilingual one, each loaded when first needed.

    An encoder handed in (tests, benchmarks) is used as it is and names its own vectors;
    otherwise the configured model is loaded, and the configured name identifies the vectors
    so that loading an index never has to load the model.
    """

    def __init__(
        self,
        *,
        model: str,
        model_id: str,
        batch_size: int,
        backend: str,
        models_dir: Path,
        multilingual_model: str | None,
        encoder: Encoder | None = None,
        multilingual_encoder: Encoder | None = None,
    ) -> None:
        self.model, self.model_id = model, model_id
        self.batch_size, self.backend, self.models_dir = batch_size, backend, models_dir
        self.multilingual_model = multilingual_model  # None: the multilingual space is off
        self._primary = encoder
        self._multilingual = multilingual_encoder

    @property
    def primary(self) -> Encoder:
        """The embedding model, loaded on first use."""
        if self._primary is None:
            self._primary = get_encoder(
                self.model,
                batch_size=self.batch_size,
                backend=self.backend,
                cache_dir=self.models_dir,
            )
        return self._primary

    @property
    def multilingual(self) -> Encoder:
        """The multilingual model, loaded on first use."""
        if self._multilingual is None:
            if self.multilingual_model is None:
                raise RuntimeError("the multilingual space is off (MATCHER_MULTILINGUAL_MODEL)")
            self._multilingual = get_encoder(self.multilingual_model, batch_size=self.batch_size)
        return self._multilingual

    def primary_id(self) -> str:
        """The name of the primary space's vectors (without loading the model)."""
        return self._primary.name if self._primary is not None else self.model_id

    def multilingual_id(self) -> str:
        """The name of the multilingual space's vectors (without loading the model)."""
        if self._multilingual is not None:
            return self._multilingual.name
        return self.multilingual_model or ""

    def use_primary(self, encoder: Encoder) -> None:
        """Serve from now on with another encoder of the same space (a benchmark compares
        backends of one model this way; the stored vectors stay as they were built)."""
        self._primary = encoder

    @property
    def shared(self) -> bool:
        """Whether one model serves both spaces (a query then has one vector for both)."""
        return self.multilingual is self.primary

    def query(self, text: str) -> np.ndarray:
        """Vector of an ad-hoc query text (never cached: queries are one-off)."""
        return encode_queries(self.primary, [text])[0]

    def query_multilingual(self, text: str) -> np.ndarray:
        """Vector of an ad-hoc query text in the multilingual space."""
        return encode_queries(self.multilingual, [text])[0]
