"""Refitted heads applied on top of the shipped model: what a promoted version is, and the scorer that follows it.

A heads version is a complaint and a sentiment head (linear, on the pooled encoder features) with their
temperatures, stored in the database (``models/heads.py``). ``VersionedScorer`` wraps the transformer scorer:
before each batch it asks which version is active (one indexed read, at most every ``check_s`` seconds) and
swaps the heads in, so every worker scores with the promoted version, and its ``model_id`` names it exactly
(``escucha-e5s6-multitask-v1+heads-3``). The anger head and the encoder are never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifier.base import PostFacts, PostScore
from classifier.model import MultiHead
from classifier.scorer import Forward, TransformerScorer, normalise
from models.heads import active_version, active_version_id, model_id_of

log = logging.getLogger(__name__)

HEADS = ("complaint", "sentiment")


@dataclass(frozen=True)
class Heads:
    """Complaint weight [hidden] and bias, sentiment weight [3, hidden] and bias [3], and their temperatures."""

    complaint_w: torch.Tensor
    complaint_b: float
    sentiment_w: torch.Tensor
    sentiment_b: torch.Tensor
    temperatures: dict[str, float]

    def to_bytes(self) -> bytes:
        """The four tensors as safetensors bytes (float32)."""
        from safetensors.torch import save

        return save(
            {
                "complaint.weight": self.complaint_w.float().contiguous(),
                "complaint.bias": torch.tensor([self.complaint_b], dtype=torch.float32),
                "sentiment.weight": self.sentiment_w.float().contiguous(),
                "sentiment.bias": self.sentiment_b.float().contiguous(),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, temperatures: dict[str, Any]) -> Heads:
        """Read heads written by ``to_bytes``; raises ValueError when a tensor is missing or misshapen."""
        from safetensors.torch import load

        tensors = load(data)
        try:
            heads = cls(
                complaint_w=tensors["complaint.weight"],
                complaint_b=float(tensors["complaint.bias"][0]),
                sentiment_w=tensors["sentiment.weight"],
                sentiment_b=tensors["sentiment.bias"],
                temperatures={k: float(v) for k, v in temperatures.items()},
            )
        except KeyError as exc:
            raise ValueError(f"heads without {exc}") from exc
        if heads.sentiment_w.shape[0] != 3 or heads.sentiment_w.shape[1] != heads.complaint_w.shape[0]:
            raise ValueError(f"heads of mismatched shapes {tuple(heads.sentiment_w.shape)}, {heads.complaint_w.shape}")
        return heads

    def logits(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Complaint [n] and sentiment [n, 3] logits (temperatures not applied) for pooled features [n, hidden]."""
        return {
            "complaint": pooled @ self.complaint_w + self.complaint_b,
            "sentiment": pooled @ self.sentiment_w.T + self.sentiment_b,
        }


def pool_of(forward: Forward) -> Any:
    """The pooled-features function of a scorer's forward pass (PyTorch ``MultiHead`` or the ONNX runner)."""
    pool = getattr(forward, "pool", None)
    if pool is None:
        raise TypeError(f"{type(forward).__name__} cannot give pooled features")
    return pool


class HeadsForward:
    """The model's forward pass with the complaint and sentiment heads replaced; anger stays the model's."""

    def __init__(self, base: Forward, heads: Heads) -> None:
        self.base = base
        self.heads = heads

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        if isinstance(self.base, MultiHead):
            pooled = self.base.pool(input_ids, attention_mask)
            anger = self.base.anger(pooled).squeeze(-1)
        else:
            # The ONNX runner: anger and the pooled features in one run of the session.
            from classifier.onnx_backend import POOLED

            session = self.base.session  # type: ignore[attr-defined]
            anger_out, pooled_out = session.run(["anger", POOLED], self.base._feeds(input_ids, attention_mask))  # type: ignore[attr-defined]
            anger, pooled = torch.as_tensor(anger_out), torch.as_tensor(pooled_out)
        return {**self.heads.logits(pooled.float()), "anger": anger}

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The base model's pooled features (the heads do not change them)."""
        result: torch.Tensor = pool_of(self.base)(input_ids, attention_mask)
        return result


@torch.inference_mode()
def pooled_texts(scorer: TransformerScorer, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
    """Pooled features [n, hidden] of ``texts`` exactly as the scorer reads them (prefix, normalising, length)."""
    pool = pool_of(scorer.forward)
    ids = scorer.tokenizer(
        [scorer.spec.prefix + (normalise(t) or "-") for t in texts], truncation=True, max_length=scorer.spec.max_length
    )["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: torch.Tensor | None = None
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(ids[i]) for i in idx)
        input_ids = torch.full((len(idx), width), scorer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        pooled = pool(input_ids, mask).float()
        if out is None:
            out = torch.empty((len(ids), pooled.shape[1]))
        out[torch.tensor(idx)] = pooled
    return out if out is not None else torch.zeros((0, 0))


def base_heads(forward: Forward, spec: Any, source_dir: Any) -> Heads:
    """The heads a model's own weights carry (what a rollback to "no version" restores)."""
    temperatures = {k: float(spec.temperatures.get(k, 1.0)) for k in HEADS}
    if isinstance(forward, MultiHead):
        return Heads(
            complaint_w=forward.complaint.weight.detach()[0].clone(),
            complaint_b=float(forward.complaint.bias.detach()[0]),
            sentiment_w=forward.sentiment.weight.detach().clone(),
            sentiment_b=forward.sentiment.bias.detach().clone(),
            temperatures=temperatures,
        )
    from safetensors import safe_open

    from classifier.model import DELTA

    # The ONNX backend never loads the PyTorch model: the heads are read from the delta file itself.
    if source_dir is None:
        raise ValueError("the scorer has no model directory to read its heads from")
    with safe_open(str(source_dir / DELTA), framework="pt") as delta:
        return Heads(
            complaint_w=delta.get_tensor("complaint.weight").float()[0],
            complaint_b=float(delta.get_tensor("complaint.bias").float()[0]),
            sentiment_w=delta.get_tensor("sentiment.weight").float(),
            sentiment_b=delta.get_tensor("sentiment.bias").float(),
            temperatures=temperatures,
        )


class VersionedScorer:
    """A transformer scorer that applies the database's active heads version for its base model."""

    def __init__(self, inner: TransformerScorer, engine: Engine, *, check_s: float = 30.0) -> None:
        self.inner = inner
        self.engine = engine
        self.check_s = check_s
        self.base_model = inner.model_id
        self._base_forward = inner.forward
        self._base_spec = inner.spec
        self.version_id: int | None = None
        self._checked_at = float("-inf")

    @property
    def model_id(self) -> str:
        """The exact model: base weights plus the heads version (``…+heads-3``), or the base alone."""
        return self.inner.model_id

    def base_heads(self) -> Heads:
        """The shipped model's own heads, whatever version is applied now."""
        return base_heads(self._base_forward, self._base_spec, self.inner.source_dir)

    def refresh(self, *, force: bool = False) -> int | None:
        """Apply the active version if it changed since the last look; returns the version in use."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_s:
            return self.version_id
        self._checked_at = now
        try:
            wanted = active_version_id(self.engine, self.base_model)
        except Exception as exc:  # the database is away: keep scoring with what we have
            log.warning("heads version check failed (%s); scoring with %s", exc, self.model_id)
            return self.version_id
        if wanted != self.version_id:
            self._apply(wanted)
        return self.version_id

    def _apply(self, version_id: int | None) -> None:
        """Swap the heads in (or back to the base ones)."""
        if version_id is None:
            self.inner.forward, self.inner.spec = self._base_forward, self._base_spec
            self.inner.model_id, self.version_id = self.base_model, None
            log.info("scorer: %s (base heads)", self.base_model)
            return
        with Session(self.engine) as session:
            row = active_version(session, self.base_model)
        if row is None or row.id != version_id:
            return  # it changed again meanwhile: the next look applies the newer one
        try:
            heads = Heads.from_bytes(row.weights, row.temperatures)
        except ValueError as exc:
            log.error("heads version %s cannot be applied (%s); keeping %s", version_id, exc, self.model_id)
            return
        temps = {**self._base_spec.temperatures, **heads.temperatures}
        self.inner.forward = HeadsForward(self._base_forward, heads)
        self.inner.spec = replace(self._base_spec, temperatures=temps)
        self.inner.model_id, self.version_id = model_id_of(self.base_model, version_id), version_id
        log.info("scorer: %s", self.inner.model_id)

    def score(self, posts: list[PostFacts]) -> list[PostScore]:
        """Score with the active heads version (looked up at most every ``check_s`` seconds)."""
        self.refresh()
        return self.inner.score(posts)


def versioned(scorer: Any, engine: Engine) -> Any:
    """``scorer`` wrapped to follow the database's heads versions when it is the transformer; else as it is."""
    return VersionedScorer(scorer, engine) if isinstance(scorer, TransformerScorer) else scorer
