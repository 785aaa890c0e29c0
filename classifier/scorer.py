"""TransformerScorer: the fine-tuned multi-head encoder behind the `Scorer` protocol.

Sentiment, complaint and anger come from the model (temperature-calibrated); the crisis lane, anger
words and complaint cues come from the lexicon (high recall in both languages, and words an agent can
read); urgency combines them with the post's facts in `classifier/urgency.py`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from classifier.base import SENTIMENTS, PostFacts, PostScore
from classifier.language import detect_language
from classifier.lexicon_scorer import MAX_CHARS, extract_evidence
from classifier.model import ModelSpec, MultiHead, load_model, load_spec_and_tokenizer
from classifier.urgency import urgency

log = logging.getLogger(__name__)

_WS = re.compile(r"\s+")
_USER = re.compile(r"@\w{1,30}")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def normalise(text: str) -> str:
    """What the model reads: handles and URLs as the placeholders tweet corpora use, whitespace collapsed."""
    text = _URL.sub("http", _USER.sub("@user", text[:MAX_CHARS]))
    return _WS.sub(" ", text).strip()


BACKENDS = ("onnx", "torch", "torch-int8")


def default_backend() -> str:
    """``$ESCUCHA_BACKEND`` if set, else ONNX Runtime int8 when it is installed, else PyTorch fp32."""
    from classifier import onnx_backend

    chosen = os.environ.get("ESCUCHA_BACKEND", "").strip().lower()
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(f"ESCUCHA_BACKEND={chosen!r}: expected one of {', '.join(BACKENDS)}")
        return chosen
    return "onnx" if onnx_backend.available() else "torch"


def quantise_int8(model: MultiHead) -> MultiHead:
    """Dynamic int8 quantisation of the encoder's Linear layers (weights int8, activations quantised per batch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.encoder = torch.ao.quantization.quantize_dynamic(model.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return model


Forward = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


class TransformerScorer:
    """Scores posts in length-bucketed batches with one forward pass per batch.

    ``forward`` is the model itself (PyTorch backends) or an ONNX Runtime session over the same weights;
    ``model_id`` names the weights, not the backend, so switching backends does not re-score open posts.
    """

    source_dir: Path | None = None

    def __init__(
        self,
        forward: Forward,
        tokenizer: Any,
        spec: ModelSpec,
        *,
        backend: str = "torch",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if isinstance(forward, torch.nn.Module):
            forward = forward.eval()
        self.forward = forward
        self.backend = backend
        self.tokenizer = tokenizer
        self.spec = spec
        self.model_id = spec.model_id if spec.trained else f"{spec.model_id} (untrained heads)"
        self.batch_size = batch_size
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        if threads:
            torch.set_num_threads(threads)

    @classmethod
    def from_dir(cls, directory: Path, *, backend: str | None = None, **kwargs: Any) -> TransformerScorer:
        """Load the model directory with ``backend`` (default: ``default_backend()``)."""
        backend = backend or default_backend()
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        forward: Forward
        if backend == "onnx":
            from classifier import onnx_backend

            spec, tokenizer = load_spec_and_tokenizer(directory)
            # Only the int8 file is read here; a missing one is exported by a child process first.
            forward = onnx_backend.load_runner(directory, threads=kwargs.get("threads"))
        else:
            model, tokenizer, spec = load_model(directory)
            forward = quantise_int8(model) if backend == "torch-int8" else model
        scorer = cls(forward, tokenizer, spec, backend=backend, **kwargs)
        scorer.source_dir = directory
        return scorer

    @torch.inference_mode()
    def predict(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Calibrated probabilities: sentiment [n, 3], complaint [n], anger [n], in input order."""
        n = len(texts)
        if n == 0:
            return {"sentiment": torch.zeros((0, 3)), "complaint": torch.zeros(0), "anger": torch.zeros(0)}
        prefixed = [self.spec.prefix + (normalise(t) or "-") for t in texts]
        ids = self.tokenizer(prefixed, truncation=True, max_length=self.spec.max_length)["input_ids"]
        order = sorted(range(n), key=lambda i: len(ids[i]))
        logits = {"sentiment": torch.empty((n, 3)), "complaint": torch.empty(n), "anger": torch.empty(n)}
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            width = len(ids[idx[-1]])
            input_ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            out = self.forward(input_ids, mask)
            where = torch.tensor(idx)
            for head, values in logits.items():
                values[where] = out[head].float()
        # One softmax/sigmoid per call, not per forward pass: each torch op wakes torch's own thread pool
        # right after ONNX Runtime's threads had the cores (an in-process A/B on 2,048 tweets: 655 → 820/s).
        temps = self.spec.temperatures
        comp = torch.sigmoid(logits["complaint"] / temps.get("complaint", 1.0))
        alpha = float(self.spec.coupling.get("negative_from_complaint", 0.0))
        if alpha:  # a complaint is negative unless the text is clearly otherwise (strength chosen by CV)
            logits["sentiment"][:, 0] += alpha * comp
        sent = torch.softmax(logits["sentiment"] / temps.get("sentiment", 1.0), dim=-1)
        ang = torch.sigmoid(logits["anger"] / temps.get("anger", 1.0))
        return {"sentiment": sent, "complaint": comp, "anger": ang}

    def score(self, posts: list[PostFacts]) -> list[PostScore]:
        """Return one score per post, in order."""
        texts = [p.text if isinstance(p.text, str) else str(p.text or "") for p in posts]
        probs = self.predict(texts)
        return [
            self._combine(
                post, text, probs["sentiment"][i].tolist(), float(probs["complaint"][i]), float(probs["anger"][i])
            )
            for i, (post, text) in enumerate(zip(posts, texts, strict=True))
        ]

    def _combine(self, post: PostFacts, text: str, sent: list[float], complaint: float, anger: float) -> PostScore:
        ev = extract_evidence(text)
        probabilities = {label: float(p) for label, p in zip(SENTIMENTS, sent, strict=True)}
        if any(not math.isfinite(p) for p in probabilities.values()):
            probabilities = {"negative": 0.0, "neutral": 1.0, "positive": 0.0}
        sentiment = max(probabilities, key=probabilities.__getitem__)
        if ev.crisis:
            complaint = max(complaint, 0.9)  # a threat, leak or outage needs an answer however it is worded
        anger_words = list(ev.anger)
        if anger >= 0.6 and not anger_words:
            anger_words = [f"anger {anger:.2f}"]
        points, reasons = urgency(
            complaint,
            probabilities["negative"],
            anger=anger_words,
            crisis=ev.crisis,
            is_dm=post.is_dm,
            followers=post.followers_count,
            waiting_s=post.waiting_s,
        )
        if ev.cues:
            reasons.append("cues: " + ", ".join(ev.cues))
        if ev.question:
            reasons.append("question")
        if ev.truncated_from:
            reasons.append(f"long text: scored the first {MAX_CHARS:,} of {ev.truncated_from:,} chars")
        if not self.spec.trained:
            reasons.append("untrained model heads: scores are not meaningful")
        needs_response = bool(post.is_dm or ev.crisis or complaint >= 0.5 or (ev.question and complaint >= 0.3))
        return PostScore(
            sentiment=sentiment,
            probabilities=probabilities,
            complaint=complaint,
            urgency=points,
            language=detect_language(text[:MAX_CHARS]),
            model_id=self.model_id,
            reasons=reasons,
            needs_response=needs_response,
            crisis=bool(ev.crisis),
        )
