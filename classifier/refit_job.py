"""The refit job: when enough staff corrections have accumulated, refit the heads on them, gated and reversible.

Each run, under a lock only one worker holds at a time (``models.heads.refit_lock``):

1. **Check the active version.** Corrections made after it was promoted were never trained on; once there are
   ``min_check`` of them, the active heads are compared with the heads before them on those. Worse: rolled back.
2. **Wait for enough.** Nothing happens until ``min_corrections`` corrections arrived since the last attempt.
3. **Gate by cross-validation on the corrections.** The corrections are cut into ``folds`` stratified folds; for each,
   new heads are fitted on the training corpora's cached features plus the other folds' corrections
   (``classifier.refit``'s own ``fit_logistic``/``fit_softmax`` with the L2 the shipped model chose) and the old
   heads and the new ones are scored on the held-back fold. The new heads are kept only if their log-loss over
   all held-back corrections is not worse.
4. **Promote.** Heads fitted on everything, temperatures refitted on the calibration slice, stored as a new
   version: every worker's ``VersionedScorer`` picks it up, and the previous version stays to roll back to.

Every run that does something is recorded in ``refit_attempt`` (when, how many corrections, old and new figures,
the outcome, or why it was skipped).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifier.feedback import Label, load_labels
from classifier.heads import Heads, VersionedScorer, pooled_texts
from classifier.language import detect_language
from classifier.refit import _folds, balanced_weights, fit_logistic, fit_softmax
from models.heads import (
    active_version,
    corrections_after,
    last_attempt,
    latest_correction_id,
    model_id_of,
    promote,
    record_attempt,
    refit_lock,
    rollback,
)
from models.tables import HeadsVersion, RefitAttempt

log = logging.getLogger(__name__)

FEATURES_ENV = "ESCUCHA_REFIT_FEATURES"
# The shipped model's cross-validated choices (escucha.json), used when the manifest does not say.
DEFAULT_L2 = {"complaint": 0.03, "sentiment": 0.1}


@dataclass(frozen=True)
class RefitOptions:
    """When the job refits and how it judges: thresholds, folds, and how much a correction weighs."""

    min_corrections: int = 50
    folds: int = 5
    # Corrections are the desk's own posts, a few dozen against ~17,000 corpus tweets: each counts this many times.
    correction_weight: int = 10
    # Corrections since a promotion needed before the promoted heads are judged against the ones before them.
    min_check: int = 20
    seed: int = 13


@dataclass
class TrainingFeatures:
    """The training corpora's pooled features and labels, cached once per base model (``cache_features``)."""

    complaint_x: torch.Tensor
    complaint_y: torch.Tensor
    sentiment_x: torch.Tensor
    sentiment_y: torch.Tensor
    sentiment_lang: list[str]
    calib_complaint_x: torch.Tensor
    calib_complaint_y: torch.Tensor
    calib_sentiment_x: torch.Tensor
    calib_sentiment_y: torch.Tensor
    l2: dict[str, float]

    _TENSORS = (
        "complaint_x", "complaint_y", "sentiment_x", "sentiment_y",
        "calib_complaint_x", "calib_complaint_y", "calib_sentiment_x", "calib_sentiment_y",
    )  # fmt: skip

    def save(self, path: Path) -> None:
        """Write the features atomically (safetensors; the languages and L2 in its metadata)."""
        import json

        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        save_file(
            {name: getattr(self, name).detach().clone().contiguous() for name in self._TENSORS},
            str(staged),
            metadata={"sentiment_lang": json.dumps(self.sentiment_lang), "l2": json.dumps(self.l2)},
        )
        os.replace(staged, path)

    @classmethod
    def load(cls, path: Path) -> TrainingFeatures:
        """Read features written by ``save``; raises ValueError on a file that is not one."""
        import json

        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {name: fh.get_tensor(name) for name in cls._TENSORS}
            return cls(**tensors, sentiment_lang=json.loads(meta["sentiment_lang"]), l2=json.loads(meta["l2"]))
        except Exception as exc:  # a truncated or foreign file: the job says so rather than crash the worker
            raise ValueError(f"{path}: not a refit features file ({exc})") from exc


def features_path(base_model: str) -> Path:
    """Where the training features of ``base_model`` are cached (``$ESCUCHA_REFIT_FEATURES`` overrides)."""
    if os.environ.get(FEATURES_ENV):
        return Path(os.environ[FEATURES_ENV])
    from classifier.e5_weights import cache_root

    return cache_root() / "refit" / f"{base_model}.features.safetensors"


def _l2_of(scorer: VersionedScorer) -> dict[str, float]:
    """The L2 strengths the shipped refit chose by cross-validation (its manifest), else the defaults."""
    training = scorer.inner.spec.metrics.get("training", {}) if isinstance(scorer.inner.spec.metrics, dict) else {}
    return {
        "complaint": float(training.get("complaint_refit", {}).get("l2", DEFAULT_L2["complaint"])),
        "sentiment": float(training.get("sentiment_refit", {}).get("l2", DEFAULT_L2["sentiment"])),
    }


def cache_features(scorer: VersionedScorer, data_dir: Path, *, seed: int = 13, english_sample: int = 5000) -> Path:
    """Pool the training and calibration texts of ``escucha train`` once and cache them for the refit job."""
    from classifier.train import build_splits

    splits = build_splits(data_dir, seed=seed, english_sample=english_sample)

    def part(examples: Sequence[Any], task: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        chosen = [e for e in examples if e.task == task]
        x = pooled_texts(scorer.inner, [e.text for e in chosen])
        return x, torch.tensor([e.label for e in chosen]), [e.lang for e in chosen]

    cx, cy, _ = part(splits.train, "complaint")
    sx, sy, slang = part(splits.train, "sentiment")
    kcx, kcy, _ = part(splits.calib, "complaint")
    ksx, ksy, _ = part(splits.calib, "sentiment")
    path = features_path(scorer.base_model)
    TrainingFeatures(cx, cy, sx, sy, slang, kcx, kcy, ksx, ksy, _l2_of(scorer)).save(path)
    return path


@dataclass
class Corrections:
    """Corrections with their pooled features, split by task."""

    labels: list[Label]
    x: torch.Tensor

    def task(self, task: str, idx: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Features, labels and languages of one task's corrections (among ``idx`` if given)."""
        chosen = [i for i in (range(len(self.labels)) if idx is None else idx) if self.labels[i].task == task]
        x = self.x[torch.tensor(chosen, dtype=torch.long)] if chosen else self.x[:0]
        y = torch.tensor([self.labels[i].label for i in chosen], dtype=torch.long)
        return x, y, [detect_language(self.labels[i].text) for i in chosen]


Fitter = Callable[[TrainingFeatures, Corrections, Sequence[int], int], Heads]


def fit_heads(train: TrainingFeatures, corrections: Corrections, idx: Sequence[int], weight: int) -> Heads:
    """Heads fitted on the corpora plus the corrections ``idx`` (each ``weight`` times), temperatures on calibration."""
    from classifier.train import fit_temperature

    cx, cy, _ = corrections.task("complaint", idx)
    x = torch.cat([train.complaint_x, cx.repeat(weight, 1)])
    y = torch.cat([train.complaint_y.float(), cy.float().repeat(weight)])
    complaint_w, complaint_b = fit_logistic(x, y, train.l2["complaint"])
    sx, sy, slang = corrections.task("sentiment", idx)
    labels = [*train.sentiment_y.tolist(), *sy.tolist()]
    langs = [*train.sentiment_lang, *slang]
    weights = balanced_weights(labels, langs)
    weights[len(train.sentiment_lang) :] *= weight
    sentiment_w, sentiment_b = fit_softmax(
        torch.cat([train.sentiment_x, sx]), torch.tensor(labels), train.l2["sentiment"], weights, 3
    )
    raw = Heads(complaint_w, complaint_b, sentiment_w, sentiment_b, {})
    calib_c = raw.logits(train.calib_complaint_x)["complaint"]
    calib_s = raw.logits(train.calib_sentiment_x)["sentiment"]
    temperatures = {
        "complaint": fit_temperature(calib_c, train.calib_complaint_y, binary=True),
        "sentiment": fit_temperature(calib_s, train.calib_sentiment_y, binary=False),
    }
    return Heads(complaint_w, complaint_b, sentiment_w, sentiment_b, temperatures)


def judge_heads(heads: Heads, corrections: Corrections, idx: Sequence[int]) -> dict[str, float]:
    """Summed log-loss and hits of calibrated ``heads`` on the corrections ``idx``, per task (sums pool folds)."""
    out: dict[str, float] = {}
    for task in ("complaint", "sentiment"):
        x, y, _ = corrections.task(task, idx)
        if len(y) == 0:
            out.update({f"{task}_loss": 0.0, f"{task}_hits": 0.0, f"{task}_n": 0.0})
            continue
        logits = heads.logits(x)[task] / heads.temperatures.get(task, 1.0)
        if task == "complaint":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum")
            hits = ((logits > 0).long() == y).sum()
        else:
            loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
            hits = (logits.argmax(1) == y).sum()
        out.update({f"{task}_loss": float(loss), f"{task}_hits": float(hits), f"{task}_n": float(len(y))})
    return out


def _summary(sums: dict[str, float]) -> dict[str, Any]:
    """Mean log-loss (lower is better) over every correction, and accuracy per task."""
    n = sums.get("complaint_n", 0.0) + sums.get("sentiment_n", 0.0)
    out: dict[str, Any] = {
        "log_loss": round((sums.get("complaint_loss", 0.0) + sums.get("sentiment_loss", 0.0)) / n, 4)
    }
    for task in ("complaint", "sentiment"):
        if sums.get(f"{task}_n"):
            out[f"{task}_accuracy"] = round(sums[f"{task}_hits"] / sums[f"{task}_n"], 4)
            out[f"{task}_n"] = int(sums[f"{task}_n"])
    return out


def _add(total: dict[str, float], part: dict[str, float]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + value


def cross_validate(
    train: TrainingFeatures, corrections: Corrections, old: Heads, options: RefitOptions, fitter: Fitter
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Old and new heads scored on held-back folds of the corrections; returns both summaries and the folds used."""
    folds = max(2, min(options.folds, len(corrections.labels)))
    fold_of = _folds([(c.task, c.label) for c in corrections.labels], folds, options.seed)
    old_sums: dict[str, float] = {}
    new_sums: dict[str, float] = {}
    for k in range(folds):
        held = [i for i, f in enumerate(fold_of) if f == k]
        rest = [i for i, f in enumerate(fold_of) if f != k]
        if not held:
            continue
        _add(old_sums, judge_heads(old, corrections, held))
        _add(new_sums, judge_heads(fitter(train, corrections, rest, options.correction_weight), corrections, held))
    return _summary(old_sums), _summary(new_sums), folds


def _heads_of(row: HeadsVersion | None, scorer: VersionedScorer) -> Heads:
    return scorer.base_heads() if row is None else Heads.from_bytes(row.weights, row.temperatures)


def run_refit(
    engine: Engine,
    scorer: VersionedScorer,
    options: RefitOptions | None = None,
    *,
    fitter: Fitter = fit_heads,
    actor: str = "worker",
) -> RefitAttempt | None:
    """One pass of the job (see the module's docstring); returns the attempt it recorded, or None if it did nothing."""
    options = options or RefitOptions()
    with refit_lock(engine) as held:
        if not held:
            log.info("refit: another worker is refitting; skipping this tick")
            return None
        started = time.monotonic()
        try:
            attempt = _check_active(engine, scorer, options, actor) or _refit(engine, scorer, options, fitter, actor)
        except Exception as exc:  # recorded, and not retried until new corrections come: a bad fit loses nothing
            log.exception("refit failed")
            with Session(engine, expire_on_commit=False) as session:
                attempt = record_attempt(
                    session,
                    actor=actor,
                    outcome="failed",
                    reason=f"{type(exc).__name__}: {exc}",
                    base_model=scorer.base_model,
                    last_correction_id=latest_correction_id(session),
                    old_model_id=scorer.model_id,
                )
                session.commit()
        if attempt is not None:
            log.info("refit: %s (%s) in %.1f s", attempt.outcome, attempt.reason, time.monotonic() - started)
            scorer.refresh(force=True)
        return attempt


def _load_corrections(scorer: VersionedScorer, labels: list[Label]) -> Corrections:
    return Corrections(labels, pooled_texts(scorer.inner, [c.text for c in labels]))


def _check_active(engine: Engine, scorer: VersionedScorer, options: RefitOptions, actor: str) -> RefitAttempt | None:
    """Roll the active version back when corrections made since its promotion say its predecessor did better."""
    base = scorer.base_model
    with Session(engine, expire_on_commit=False) as session:
        current = active_version(session, base)
        if current is None:
            return None
        unseen = [c for c in load_labels(engine) if c.correction_id > current.last_correction_id]
        last = last_attempt(session, base)
        # Judged once per batch of new corrections, not on every tick.
        if len(unseen) < options.min_check or (
            last is not None and last.last_correction_id >= unseen[-1].correction_id
        ):
            return None
        previous = session.get(HeadsVersion, current.previous_id) if current.previous_id is not None else None
        corrections = _load_corrections(scorer, unseen)
        idx = list(range(len(unseen)))
        now = _summary(judge_heads(_heads_of(current, scorer), corrections, idx))
        before = _summary(judge_heads(_heads_of(previous, scorer), corrections, idx))
        if now["log_loss"] <= before["log_loss"]:
            return None
        attempt = rollback(
            session,
            base=base,
            actor=actor,
            reason=(
                f"on {len(unseen)} corrections made since version {current.id} was promoted its log-loss "
                f"{now['log_loss']} was worse than {before['log_loss']} of the heads before it"
            ),
            figures={"old": now, "new": before, "held_back": len(unseen)},
        )
        session.commit()
        return attempt


def _refit(
    engine: Engine, scorer: VersionedScorer, options: RefitOptions, fitter: Fitter, actor: str
) -> RefitAttempt | None:
    """Steps 2-4: wait for enough corrections, cross-validate, promote or keep; record what happened."""
    base = scorer.base_model
    with Session(engine, expire_on_commit=False) as session:
        last = last_attempt(session, base)
        watermark = last.last_correction_id if last is not None else 0
        new = corrections_after(session, watermark)
        if new < options.min_corrections:
            return None
        newest = latest_correction_id(session)
        current = active_version(session, base)
        old_id = model_id_of(base, current.id if current is not None else None)
        common = {
            "actor": actor, "base_model": base, "new_corrections": new, "last_correction_id": newest,
            "old_model_id": old_id,
        }  # fmt: skip
        path = features_path(base)
        try:
            train = TrainingFeatures.load(path) if path.is_file() else None
        except ValueError as exc:
            train, missing = None, str(exc)
        else:
            missing = f"no training features at {path}: run `escucha heads cache-features --data-dir DIR`"
        if train is None:
            log.warning("refit skipped: %s", missing)
            attempt = record_attempt(session, outcome="skipped", reason=missing, **common)
            session.commit()
            return attempt
        labels = load_labels(engine)
        corrections = _load_corrections(scorer, labels)
        old = _heads_of(current, scorer)
        before, after, folds = cross_validate(train, corrections, old, options, fitter)
        figures = {"old": before, "new": after, "folds": folds, "correction_weight": options.correction_weight}
        if after["log_loss"] > before["log_loss"]:
            attempt = record_attempt(
                session,
                outcome="kept",
                reason=f"new heads' held-back log-loss {after['log_loss']} is worse than {before['log_loss']}",
                n_corrections=len(labels),
                figures=figures,
                **common,
            )
            session.commit()
            return attempt
        heads = fitter(train, corrections, list(range(len(labels))), options.correction_weight)
        version = promote(
            session,
            base=base,
            weights=heads.to_bytes(),
            temperatures=heads.temperatures,
            n_corrections=len(labels),
            last_correction_id=newest,
        )
        attempt = record_attempt(
            session,
            outcome="promoted",
            reason=f"held-back log-loss {before['log_loss']} -> {after['log_loss']} over {folds} folds",
            n_corrections=len(labels),
            figures=figures,
            new_model_id=model_id_of(base, version.id),
            heads_version_id=version.id,
            **common,
        )
        session.commit()
        return attempt
