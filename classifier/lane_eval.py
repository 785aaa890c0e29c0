"""Precision and recall, with 95 % intervals, of two lanes: "for the brand" (relevance) and crisis.

Both read a hand-labelled TSV (``classifier/eval/``) and score it with the product's own scorer, so a figure is
what the desk would have done with those posts. Recall comes first: a crisis, or a customer, missed is the
costly error.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.base import PostFacts, Scorer
from classifier.relevance import judge

Z95 = 1.959964


def wilson(hits: int, n: int) -> list[float] | None:
    """The Wilson score 95 % interval of ``hits``/``n`` (None when n is 0), rounded to 3 places."""
    if n <= 0:
        return None
    p = hits / n
    centre = (p + Z95 * Z95 / (2 * n)) / (1 + Z95 * Z95 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / (1 + Z95 * Z95 / n)
    return [round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)]


def binary_report(gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, Any]:
    """Recall, precision (each with its 95 % interval), F1 and the counts, recall first."""
    tp = sum(1 for g, p in zip(gold, pred, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, pred, strict=True) if p and not g)
    fn = sum(1 for g, p in zip(gold, pred, strict=True) if g and not p)
    recall = tp / (tp + fn) if tp + fn else None
    precision = tp / (tp + fp) if tp + fp else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "recall": None if recall is None else round(recall, 3),
        "recall_95": wilson(tp, tp + fn),
        "precision": None if precision is None else round(precision, 3),
        "precision_95": wilson(tp, tp + fp),
        "f1": round(f1, 3),
        "n": len(gold),
        "positives": tp + fn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled post: its line in the file, language, label, the brand or kind it is about, and text."""

    line: int
    lang: str
    label: str
    about: str
    text: str
    split: str = ""


def read_rows(path: Path, *, labels: Sequence[str], about: str) -> tuple[list[Row], list[dict[str, Any]]]:
    """Read a labelled TSV (``lang``, ``label``, ``about`` column, ``text``); every row skipped is listed with why."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, no header row") from None
        missing = [c for c in ("lang", "label", about, "text") if c not in header]
        if missing:
            raise ValueError(f"{path}: header has no {', '.join(missing)} column")
        rows: list[Row] = []
        skipped: list[dict[str, Any]] = []
        for fields in reader:
            line = reader.line_num
            if len(fields) != len(header):
                skipped.append({"line": line, "why": f"{len(fields)} fields, header has {len(header)}"})
                continue
            rec = dict(zip(header, fields, strict=True))
            if rec["label"] not in labels:
                skipped.append({"line": line, "why": f"label {rec['label']!r} is not one of {', '.join(labels)}"})
            elif not rec["text"].strip():
                skipped.append({"line": line, "why": "empty text"})
            else:
                rows.append(Row(line, rec["lang"], rec["label"], rec[about], rec["text"]))
    return rows, skipped


# Where each source of the crisis set lives under the corpora folder, and which column holds the text.
SOURCES: dict[str, tuple[str, int]] = {
    "complaints": ("complaints/complaints_train.tsv", 3),
    "semeval": ("sentiment/semeval_en_train.tsv", 1),
    "tass": ("sentiment/tass2020_es_train.tsv", 1),
    "xlmt_en": ("sentiment/xlmt_en_train.tsv", 1),
    "xlmt_es": ("sentiment/xlmt_es_train.tsv", 1),
    "offensive": ("offensive/tweeteval_en_train.tsv", 1),
    "emotion": ("emotion/tweeteval_en_train.tsv", 1),
}


def rebuild(labels: Path, data_dir: Path) -> tuple[list[Row], list[dict[str, Any]]]:
    """The labelled posts of an id file (``source:line``, ``sha1``, ``lang``, ``label``, ``kind``, ``split``).

    The texts are read from the corpora in ``data_dir`` (research-use data is never copied into the
    repository); a row whose text is missing or whose hash differs is listed, not guessed.
    """
    cache: dict[str, list[str]] = {}
    rows: list[Row] = []
    problems: list[dict[str, Any]] = []
    with labels.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"id", "sha1", "lang", "label", "kind", "split"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{labels}: header has no {', '.join(sorted(missing))} column")
        for rec in reader:
            source, _, number = rec["id"].partition(":")
            if source not in SOURCES or not number.isdigit():
                problems.append({"line": reader.line_num, "why": f"unknown source or line {rec['id']!r}"})
                continue
            path, column = SOURCES[source]
            if source not in cache:
                file = data_dir / path
                cache[source] = file.read_text(encoding="utf-8").split("\n") if file.is_file() else []
            lines = cache[source]
            fields = lines[int(number) - 1].split("\t") if 0 < int(number) <= len(lines) else []
            text = fields[column] if len(fields) > column else ""
            if not text:
                problems.append({"line": reader.line_num, "why": f"{rec['id']}: not in {data_dir / path}"})
            elif hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:12] != rec["sha1"]:
                problems.append({"line": reader.line_num, "why": f"{rec['id']}: text differs from the one labelled"})
            else:
                rows.append(Row(reader.line_num, rec["lang"], rec["label"], rec["kind"], text, rec["split"]))
    return rows, problems


def _by_language(rows: Sequence[Row], gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, Any]:
    """``binary_report`` over every row and over each language's rows, Spanish first."""
    out: dict[str, Any] = {"all": binary_report(gold, pred)}
    for lang in sorted({r.lang for r in rows}, key=lambda x: (x != "es", x)):
        idx = [i for i, r in enumerate(rows) if r.lang == lang]
        out[lang] = binary_report([gold[i] for i in idx], [pred[i] for i in idx])
    return out


def relevance_report(rows: Sequence[Row], scorer: Scorer) -> dict[str, Any]:
    """How well the relevance rule finds posts "for the brand" among keyword hits (each row's brand is its term)."""
    scores = scorer.score([PostFacts(text=r.text) for r in rows])
    pred: list[bool] = []
    misses: list[dict[str, Any]] = []
    for r, s in zip(rows, scores, strict=True):
        verdict = judge(
            r.text,
            terms=[r.about],
            crisis=s.crisis,
            complaint=s.complaint,
            cues=[x for x in s.reasons if x.startswith("cues: ")],
            question="question" in s.reasons,
            negative=s.probabilities.get("negative", 0.0),
        )
        pred.append(verdict.for_brand)
        if verdict.for_brand != (r.label == "brand"):
            misses.append({"line": r.line, "label": r.label, "said": verdict.reason or ", ".join(verdict.signals)})
    gold = [r.label == "brand" for r in rows]
    return {"for_brand": _by_language(rows, gold, pred), "model_id": scorer.model_id, "errors": misses}


def crisis_report(rows: Sequence[Row], scorer: Scorer) -> dict[str, Any]:
    """Recall and precision of the crisis lane, overall, per language and per kind (a row's ``about``)."""
    scores = scorer.score([PostFacts(text=r.text) for r in rows])
    pred = [s.crisis for s in scores]
    gold = [r.label == "crisis" for r in rows]
    # Recall per kind of crisis (the labelled kind): did the lane catch it, under whatever name.
    kinds: dict[str, Any] = {}
    for kind in sorted({r.about for r in rows if r.label == "crisis"}):
        idx = [i for i, r in enumerate(rows) if r.label == "crisis" and r.about == kind]
        hit = sum(1 for i in idx if pred[i])
        kinds[kind] = {"recall": round(hit / len(idx), 3), "recall_95": wilson(hit, len(idx)), "positives": len(idx)}
    # Precision per name the lexicon gave: of the posts it called "legal threat", how many were crises.
    named: dict[str, Any] = {}
    for label in sorted({x[len("crisis: ") :] for s in scores for x in s.reasons if x.startswith("crisis: ")}):
        idx = [i for i, s in enumerate(scores) if _names(s.reasons, label)]
        right = sum(1 for i in idx if gold[i])
        named[label] = {
            "precision": round(right / len(idx), 3),
            "precision_95": wilson(right, len(idx)),
            "named": len(idx),
        }
    misses = [
        {"line": r.line, "label": r.label, "kind": r.about, "said": [x for x in s.reasons if x.startswith("crisis")]}
        for r, s, g, p in zip(rows, scores, gold, pred, strict=True)
        if g != p
    ]
    return {
        "crisis": _by_language(rows, gold, pred),
        "kinds": kinds,
        "named": named,
        "model_id": scorer.model_id,
        "errors": misses,
    }


def _names(reasons: Sequence[str], kind: str) -> bool:
    """Whether one of the "crisis: a, b" reasons names ``kind``."""
    return any(
        kind in (k.strip() for k in r[len("crisis: ") :].split(",")) for r in reasons if r.startswith("crisis: ")
    )
