"""``escucha train --heads-only``: a new model version whose sentiment head is refitted over the frozen encoder.

The encoder stays the parent version's (``{"kind": "model"}`` in the manifest, so the delta holds only the
heads); the pooled features come from the feature cache (``classifier/features.py``); every choice is made by
cross-validation inside the training pools (``classifier/headcv.py``); the sentiment temperature is fitted on the
calibration slice held out of the pools. The complaint and anger heads and their temperatures are the parent's.
Nothing here reads a validation or test set: those are scored once, afterwards, by ``escucha evaluate``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from classifier import headcv
from classifier.features import encoder_key, features_root, load_or_extract
from classifier.model import DELTA, ModelSpec, delta_digest
from classifier.pools import CALIB, FOLDS, REPORTED, PoolTable, build_table, v1_split_texts
from classifier.refit import fit_logistic

log = logging.getLogger(__name__)

HEADS = ("sentiment", "complaint", "anger")
COMPLAINT_L2 = 0.03  # the parent's complaint head's L2 (chosen by its own CV), reused for out-of-fold scores


def parent_heads(parent: Path) -> dict[str, torch.Tensor]:
    """The parent's head tensors (``sentiment.weight`` …) as float32."""
    delta = load_file(str(parent / DELTA))
    return {k: v.float() for k, v in delta.items() if k.split(".")[0] in HEADS}


def complaint_probability(table: PoolTable, heads: dict[str, torch.Tensor], temperature: float) -> np.ndarray:
    """Calibrated p(complaint) per row: the parent's head, except out-of-fold refits on the training complaints.

    The parent's complaint head was fitted on most training complaints, so its score on them is in-sample;
    the coupling's strength is chosen on those rows, so they get the score of a fit that did not see them.
    """
    x = torch.from_numpy(table.x)
    logits = (x @ heads["complaint.weight"].T + heads["complaint.bias"]).squeeze(-1).double().numpy()
    labelled = table.complaint >= 0
    for k in range(FOLDS):
        train = labelled & (table.fold >= 0) & (table.fold != k)
        y = torch.from_numpy(table.complaint[train].astype(np.float64))
        w, b = fit_logistic(x[torch.from_numpy(train)], y, COMPLAINT_L2)
        test = labelled & (table.fold == k)
        logits[test] = (x[torch.from_numpy(test)] @ w + b).double().numpy()
    return np.asarray(1.0 / (1.0 + np.exp(-logits / temperature)))


def fit_temperature_on(logits: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, float]]:
    """The sentiment temperature on the calibration slice, and the NLL before and after."""
    from classifier.train import fit_temperature

    lg, y = torch.from_numpy(logits).float(), torch.from_numpy(labels).long()
    t = fit_temperature(lg, y, binary=False)

    def nll(temp: float) -> float:
        return round(float(torch.nn.functional.cross_entropy(lg / temp, y)), 4)

    return t, {"before": nll(1.0), "after": nll(t), "n": len(labels)}


def train_heads(
    data_dir: Path, parent: Path, out: Path, *, model_id: str | None = None, seed: int = 13
) -> dict[str, Any]:
    """Choose, fit and write the new heads; returns the report (CV tables, choice, calibration)."""
    began = time.monotonic()
    parent_spec = ModelSpec.read(parent)
    features = load_or_extract(data_dir, parent)
    seen, reported = v1_split_texts(data_dir, seed=seed)
    table = build_table(data_dir, features, seen_texts=seen, reported_texts=reported)
    heads = parent_heads(parent)
    p_complaint = complaint_probability(table, heads, parent_spec.temperatures.get("complaint", 1.0))
    log.info("pools: %d rows, features %s; searching", len(table.x), table.x.shape)
    # Out-of-fold logits are kept beside the features, so a killed search resumes at the next candidate.
    result = headcv.search(table, p_complaint, cache=features_root() / encoder_key(parent) / "cv")
    cfg = headcv.HeadConfig(**{**result["chosen"], "pools": tuple(result["chosen"]["pools"])})
    positive = result.pop("positive_prob", None)
    w, b = headcv.fit_head(table, cfg, None, positive)
    alpha = float(result["alpha"])
    calib = (table.fold == CALIB) & (table.label >= 0)
    logits = (torch.from_numpy(table.x[calib]) @ w.T + b).double().numpy()
    logits = headcv.coupled(logits, p_complaint[calib], alpha)
    temperature, nll = fit_temperature_on(logits, table.label[calib])
    spec = ModelSpec(
        model_id=model_id or out.name,
        base={
            "kind": "model",
            "path": os.path.relpath(parent.resolve(), out.resolve()),
            "delta_sha256": delta_digest(parent),  # the heads fit this encoder only: a changed parent is refused
        },
        num_layers=parent_spec.num_layers,
        prefix=parent_spec.prefix,
        max_length=parent_spec.max_length,
        temperatures={**parent_spec.temperatures, "sentiment": temperature},
        coupling={"negative_from_complaint": alpha} if alpha else {},
        trained=True,
    )
    heads["sentiment.weight"], heads["sentiment.bias"] = w.float(), b.float()
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.float16).contiguous() for k, v in heads.items()}, str(out / DELTA))
    report = {
        "heads_only": {
            "parent": parent.name,
            "features": f"onnx-int8 pooled features of {parent.name}, cache {encoder_key(parent)}",
            "seed": seed,
            "folds": f"{FOLDS} folds by a hash of the folded text (duplicates share a fold); 1 in 20 groups held out "
            "for calibration",
            "rows": {
                "sentiment_cv": int(((table.label >= 0) & (table.fold >= 0)).sum()),
                "calibration": int(calib.sum()),
                "complaints_cv": int(((table.complaint >= 0) & (table.fold >= 0)).sum()),
                "complaints_reported_slice": int((table.fold == REPORTED).sum()),
            },
            **result,
            "temperature": {"sentiment": temperature, "calibration_nll": nll},
            "seconds": round(time.monotonic() - began),
        },
        "delta_bytes": (out / DELTA).stat().st_size,
    }
    spec.metrics = report
    spec.write(out)
    return report


def cv_markdown(report: dict[str, Any]) -> str:
    """The CV table and the coupling table of a heads-only report, as Markdown for the model card."""
    h = report["heads_only"]
    lines = [
        "| stage | candidate | es macro-F1 | en macro-recall | en (unseen by encoder) | TASS F1 | XLM-T es F1 "
        "| XLM-T en recall | other languages F1 | complaints → negative | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in h["table"]:
        lines.append(
            f"| {r['stage']} | {r['config']} | {r['es_macro_f1']} | {r['en_macro_recall']} | "
            f"{r['en_unseen_macro_recall']} | {r['tass_f1']} | {r['xlmt_es_f1']} | {r['xlmt_en_recall']} | "
            f"{' '.join(f'{k} {v}' for k, v in r['others_f1'].items())} | {r['complaints_negative']} | {r['seconds']} |"
        )
    lines += [
        "",
        "| head | alpha | es macro-F1 | en macro-recall | Δes ± noise | Δen ± noise | complaints → negative "
        "| not-complaints → negative | within noise |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in h["coupling"]:
        lines.append(
            f"| {c['config']} | {c['alpha']} | {c['es_macro_f1']} | {c['en_macro_recall']} | "
            f"{c['es_delta_noise'][0]:+.4f} ± {c['es_delta_noise'][1]:.4f} | "
            f"{c['en_delta_noise'][0]:+.4f} ± {c['en_delta_noise'][1]:.4f} | {c['complaints_negative_share']} | "
            f"{c['not_complaints_negative_share']} | {'yes' if c['within_noise'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def reported_complaints(data_dir: Path, scorer: Any, *, seed: int = 13) -> dict[str, Any]:
    """v1's reported complaints slice through the whole scorer: ROC-AUCs, share of complaints read negative."""
    from classifier.base import PostFacts
    from classifier.metrics import roc_auc
    from classifier.train import build_splits

    examples = build_splits(data_dir, seed=seed, english_sample=5000).val["complaint"]
    scores = scorer.score([PostFacts(text=e.text) for e in examples])
    labels = [e.label for e in examples]
    read = [s.sentiment for s, e in zip(scores, examples, strict=True) if e.label == 1]
    other = [s.sentiment for s, e in zip(scores, examples, strict=True) if e.label == 0]
    return {
        "model_id": scorer.model_id,
        "n": len(examples),
        "auc_urgency": round(roc_auc(labels, [s.urgency for s in scores]), 4),
        "auc_complaint_head": round(roc_auc(labels, [s.complaint for s in scores]), 4),
        "complaints": len(read),
        "complaints_negative_share": round(read.count("negative") / max(len(read), 1), 4),
        "complaints_neutral_share": round(read.count("neutral") / max(len(read), 1), 4),
        "not_complaints_negative_share": round(other.count("negative") / max(len(other), 1), 4),
    }
