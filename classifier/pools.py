"""The training pools as one table for the head refit: text, label, language, source, fold, and what the encoder saw.

Folds are drawn by a hash of the text as the model reads it (handles, links, case and punctuation folded), so
a tweet that appears in two pools (XLM-T English shares tweets with SemEval) or twice in one lands in one fold:
no duplicate leaks from training into the fold that scores it. One hash slice (1 in ``CALIB_EVERY``) is held out
of every fold as the calibration slice, where temperatures are fitted and nothing else is chosen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifier.base import SENTIMENTS
from classifier.groups import CALIB, CALIB_EVERY, FOLDS, fold_of, group_key

__all__ = ["CALIB", "CALIB_EVERY", "FOLDS", "PoolTable", "build_table", "fold_of", "group_key", "v1_split_texts"]

REPORTED = -2  # the complaints slice v1 reports its urgency AUC on: never trained on, never in a fold
COMPLAINTS = "complaints/complaints_train.tsv"
_LABEL = {s: i for i, s in enumerate(SENTIMENTS)}


@dataclass
class PoolTable:
    """Row-aligned arrays over every pool row with a usable label (row ``i`` is ``x[i]``)."""

    x: np.ndarray  # [n, hidden] pooled features
    label: np.ndarray  # sentiment class (0 negative, 1 neutral, 2 positive), or -1 for complaint rows
    complaint: np.ndarray  # 1 complaint, 0 not a complaint, -1 for sentiment rows
    lang: np.ndarray  # "en", "es", ... (complaints: "en")
    source: np.ndarray  # the pool file's stem, e.g. "tass2020_es_train"
    fold: np.ndarray  # 0..FOLDS-1, or CALIB
    seen: np.ndarray  # True when the encoder was fine-tuned on this text (v1's training mix)
    texts: list[str]
    draw: np.ndarray | None = None  # a uniform [0, 1) number per row from its text's hash: seeded subsamples


def draw_of(text: str) -> float:
    """A uniform [0, 1) number from ``text``'s hash, independent of its fold."""
    return int.from_bytes(hashlib.sha256(group_key(text).encode()).digest()[8:16], "big") / 2**64


def language_of(name: str) -> str:
    """The language of a pool file from its name (``xlmt_pt_train`` → ``pt``; SemEval → ``en``; TASS → ``es``)."""
    stem = Path(name).stem
    if stem.startswith("xlmt_"):
        return stem.split("_")[1]
    if stem.startswith("tass"):
        return "es"
    return "en"


def build_table(
    data_dir: Path,
    features: dict[str, np.ndarray],
    *,
    seen_texts: frozenset[str] = frozenset(),
    reported_texts: frozenset[str] = frozenset(),
) -> PoolTable:
    """Join each pool file's rows with its cached features (same row order) into one table."""
    from classifier.train import read_tsv

    xs: list[np.ndarray] = []
    label: list[int] = []
    complaint: list[int] = []
    lang: list[str] = []
    source: list[str] = []
    texts: list[str] = []
    for name, feats in features.items():
        rows = read_tsv(data_dir / name)
        if len(rows) != len(feats):
            raise ValueError(f"{name}: {len(rows)} rows but {len(feats)} cached feature rows (stale cache?)")
        keep = []
        for i, row in enumerate(rows):
            if name == COMPLAINTS:
                if row.get("label") not in ("complaint", "not_complaint"):
                    continue
                label.append(-1)
                complaint.append(int(row["label"] == "complaint"))
            else:
                if row.get("label") not in _LABEL:
                    continue
                label.append(_LABEL[row["label"]])
                complaint.append(-1)
            keep.append(i)
            lang.append(language_of(name))
            source.append(Path(name).stem)
            texts.append(row["text"])
        xs.append(feats[keep])
    return PoolTable(
        x=np.concatenate(xs).astype(np.float32),
        label=np.asarray(label),
        complaint=np.asarray(complaint),
        lang=np.asarray(lang),
        source=np.asarray(source),
        fold=np.asarray([REPORTED if t in reported_texts else fold_of(t) for t in texts]),
        seen=np.asarray([t in seen_texts for t in texts]),
        texts=texts,
        draw=np.asarray([draw_of(t) for t in texts]),
    )


def v1_split_texts(
    data_dir: Path, *, seed: int = 13, english_sample: int = 5000
) -> tuple[frozenset[str], frozenset[str]]:
    """(texts v1's encoder was fine-tuned on, the complaints slice v1 reports on), from v1's ``build_splits``."""
    from classifier.train import build_splits

    splits = build_splits(data_dir, seed=seed, english_sample=english_sample)
    return frozenset(e.text for e in splits.train), frozenset(e.text for e in splits.val["complaint"])
