"""The sentence-transformers (PyTorch) backend: a packaged model on the CPU."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from matcher.embed.base import PACKAGED_MODELS, EncoderUnavailableError


class SentenceTransformerEncoder:
    """sentence-transformers model on the CPU, loaded from a package or a local path."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", *, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        locate = PACKAGED_MODELS.get(name)
        path = locate() if locate else name
        if locate is None and not os.path.isdir(path):
            raise EncoderUnavailableError(
                f"model {name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
                "nor a local directory; set MATCHER_MODEL to one of those"
            )
        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(path, device="cpu")
        dim = self._model.get_embedding_dimension()
        if dim is None:  # pragma: no cover - all supported models declare it
            raise EncoderUnavailableError(f"model {name!r} does not declare its dimension")
        self.dim = int(dim)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Encode texts in batches; the output rows are unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # torch modules are not safe to call from several threads at once
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                show_progress_bar=progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
