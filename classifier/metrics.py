"""Scores of a classifier's predictions: macro recall/F1 per sentiment class and ROC-AUC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from classifier.base import SENTIMENTS


def sentiment_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Macro recall, macro F1, accuracy and per-class precision/recall/F1."""
    per: dict[str, dict[str, float]] = {}
    for c in SENTIMENTS:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[c] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "n": tp + fn}
    present = [c for c in SENTIMENTS if per[c]["n"]] or list(SENTIMENTS)
    n = len(gold)
    return {
        "n": n,
        "macro_recall": round(sum(per[c]["recall"] for c in present) / len(present), 4),
        "macro_f1": round(sum(per[c]["f1"] for c in present) / len(present), 4),
        "accuracy": round(sum(1 for g, p in zip(gold, pred, strict=True) if g == p) / n, 4) if n else 0.0,
        "per_class": per,
    }


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC-AUC by the rank-sum formula (ties get average ranks)."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if not pos or not neg:
        return float("nan")
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def bootstrap_interval(
    gold: Sequence[str], pred: Sequence[str], *, resamples: int = 1000, seed: int = 13, level: float = 0.95
) -> dict[str, Any]:
    """Percentile bootstrap interval of macro-F1 and macro-recall: how far a small set's figure can move."""
    rng = np.random.default_rng(seed)
    g, p = np.asarray(gold), np.asarray(pred)
    f1: list[float] = []
    recall: list[float] = []
    for _ in range(resamples):
        idx = rng.integers(0, len(g), len(g))
        m = sentiment_metrics(g[idx].tolist(), p[idx].tolist())
        f1.append(m["macro_f1"])
        recall.append(m["macro_recall"])
    tail = (1 - level) / 2 * 100
    return {
        "level": level,
        "resamples": resamples,
        "macro_f1": [round(float(np.percentile(f1, tail)), 4), round(float(np.percentile(f1, 100 - tail)), 4)],
        "macro_recall": [
            round(float(np.percentile(recall, tail)), 4),
            round(float(np.percentile(recall, 100 - tail)), 4),
        ],
    }
