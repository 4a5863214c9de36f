"""ONNX Runtime encoder: a packaged sentence-transformers model exported once, fused, maybe int8."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from matcher.embed.base import EncoderUnavailableError
from matcher.embed.onnx_export import (
    BLOCK,
    RECIPE,
    VARIANTS,
    OnnxExportError,
    ensure_exported,
    model_dir,
    read_json,
    require_onnxruntime,
)

__all__ = ["BLOCK", "RECIPE", "VARIANTS", "OnnxEncoder", "OnnxExportError", "ensure_exported"]


class OnnxEncoder:
    """A sentence-transformers model (mean pooling, normalised) run by ONNX Runtime on the CPU.

    ``query_variant`` gives search queries a model of their own (``encode_query``): documents
    keep ``variant``'s vectors, and so its name, index and cache, while each one-off query runs
    through the faster quantised graph.
    """

    def __init__(
        self,
        name: str = "all-MiniLM-L6-v2",
        *,
        variant: str = "fp32",
        query_variant: str | None = None,
        cache_dir: Path,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        for chosen in (variant, query_variant or variant):
            if chosen not in VARIANTS:
                raise ValueError(f"unknown ONNX variant {chosen!r}; choose one of {VARIANTS}")
        ort = require_onnxruntime()
        from tokenizers import Tokenizer

        source = model_dir(name)
        pooling = read_json(source / "1_Pooling" / "config.json")
        if pooling and not pooling.get("pooling_mode_mean_tokens"):
            raise EncoderUnavailableError(f"model {name!r} does not use mean pooling")
        # sentence-transformers truncates at max_seq_length, not at tokenizer.json's 128.
        self.max_length = int(
            read_json(source / "sentence_bert_config.json").get("max_seq_length", 256)
        )
        # Separate names per variant so embedding caches never mix their vectors.
        self.name = f"{name}+onnx" if variant == "fp32" else f"{name}+onnx-{variant}"
        self.variant = variant
        self.batch_size = batch_size
        # Dynamic int8 quantises activations with one scale per tensor, so rows sharing a batch
        # (and their padding) would shift each other's vectors; int8-block's kernels also round
        # differently with the batch's shape. Run both one text at a time.
        self._rows_per_run = 1 if variant in ("int8", "int8-block") else batch_size
        self.path = ensure_exported(name, variant, cache_dir)
        self.query_variant = query_variant
        self.query_path = ensure_exported(name, query_variant, cache_dir) if query_variant else None

        self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=self.max_length)
        self._tokenizer.no_padding()  # we pad each length-sorted batch to its own longest
        padding = read_json(source / "tokenizer.json").get("padding") or {}
        self._pad_id = int(padding.get("pad_id", 0))

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._query_session = (
            ort.InferenceSession(str(self.query_path), options, providers=["CPUExecutionProvider"])
            if self.query_path
            else None
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._lock = threading.Lock()
        if self._query_session is not None:
            # Only then: matcher.embed.encode_queries looks for this attribute.
            self.encode_query = self._encode_query

    def _run(self, ids: list[list[int]], session: Any = None) -> np.ndarray:
        """One padded batch → mean-pooled, L2-normalised vectors."""
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        # Single-segment inputs: BERT's token type ids are all zero, as the tokenizer gives.
        feeds = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        session = session or self._session
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        # Same epsilon as torch.nn.functional.normalize, which sentence-transformers uses.
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Encode texts in length-sorted batches; unit-vector rows in input order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # one batch at a time: both tokenizer settings and threads are shared
            ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
            # Longest first so each batch pads little; restored to input order below.
            order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
            out = np.empty((len(ids), self.dim), dtype=np.float32)
            starts = range(0, len(order), self._rows_per_run)
            for start in tqdm(starts, desc="onnx", unit="batch", disable=not progress):
                chosen = order[start : start + self._rows_per_run]
                out[chosen] = self._run([ids[i] for i in chosen])
        return out

    def _encode_query(self, texts: Sequence[str]) -> np.ndarray:
        """Encode search queries through the query model, each alone (no padding)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
            return np.concatenate([self._run([row], self._query_session) for row in ids])
