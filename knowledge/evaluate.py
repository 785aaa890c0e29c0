"""`escucha evaluate-answers FILE --json`: how often retrieval picks the right article, against TF-IDF.

FILE is tab-separated with a header ``lang  intent  split  text`` (``split`` is ``train`` or ``test``; ``lang``
is ``es`` or ``en``). Each intent becomes one article per language, made the way the product makes them: the
centroid of its *training* questions' embeddings. Test questions are matched against the articles of their own
language and of the other one (cross-lingual), by e5 and by TF-IDF over the same training text. The confidence
threshold is chosen by k-fold cross-validation on the training part alone; the test part only reports.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.encoder import Encoder, normalise
from knowledge.tfidf import TfidfIndex

LANGS = ("es", "en")
SPLITS = ("train", "test")
DIRECTIONS = (("es", "es"), ("en", "en"), ("es", "en"), ("en", "es"))
# A wrong answer sent with confidence costs more than a missing one: precision weighs double (F0.5).
BETA = 0.5


class EvalFileError(ValueError):
    """An evaluation file that cannot be used at all (the message says why)."""


@dataclass(frozen=True, slots=True)
class EvalRow:
    """One labelled question."""

    line: int
    lang: str
    intent: str
    split: str
    text: str


def read_eval_file(path: Path) -> tuple[list[EvalRow], list[dict[str, Any]]]:
    """Read the rows; every row skipped is returned with its line and why."""
    if not path.is_file():
        raise EvalFileError(f"{path}: no such file")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or [c.strip().lower() for c in lines[0].split("\t")] != ["lang", "intent", "split", "text"]:
        raise EvalFileError(f"{path}: the first line must be the header lang<TAB>intent<TAB>split<TAB>text")
    rows: list[EvalRow] = []
    skipped: list[dict[str, Any]] = []
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            skipped.append({"line": number, "why": "blank"})
            continue
        cells = raw.split("\t")
        if len(cells) != 4:
            skipped.append({"line": number, "why": f"{len(cells)} cells, expected 4"})
            continue
        lang, intent, split, text = (c.strip() for c in cells)
        if lang not in LANGS:
            skipped.append({"line": number, "why": f"language {lang!r}"})
        elif split not in SPLITS:
            skipped.append({"line": number, "why": f"split {split!r}"})
        elif not intent or not text:
            skipped.append({"line": number, "why": "empty intent or text"})
        else:
            rows.append(EvalRow(number, lang, intent, split, text))
    return rows, skipped


def _topk(scores: np.ndarray, gold: Sequence[int], k: int) -> float:
    """Share of rows whose gold column is among the ``k`` best (ties broken by column order)."""
    if not len(gold):
        return 0.0
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([g in row for g, row in zip(gold, order.tolist(), strict=True)]))


def _centroids(rows: list[EvalRow], vectors: np.ndarray, intents: list[str]) -> np.ndarray:
    """One unit vector per intent: the centroid of its rows' embeddings."""
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_intent[row.intent].append(i)
    return normalise(np.vstack([vectors[by_intent[name]].mean(axis=0) for name in intents]))


def choose_threshold(best: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """The score threshold whose confident answers have the best F0.5 (positives: top-1 right); and that F."""
    positives = float(correct.sum())
    if positives == 0:
        return 1.0, 0.0
    top_t, top_f = 1.0, 0.0
    for threshold in np.unique(np.round(best, 3)):
        chosen = best >= threshold
        tp = float((chosen & correct).sum())
        if tp == 0:
            continue
        precision, recall = tp / float(chosen.sum()), tp / positives
        f = (1 + BETA**2) * precision * recall / (BETA**2 * precision + recall)
        if f > top_f:
            top_t, top_f = float(threshold), f
    return top_t, top_f


def _best_over_languages(vectors: np.ndarray, centroids: dict[str, np.ndarray]) -> np.ndarray:
    """Each query's score per intent, best over the language versions (as the product ranks)."""
    return np.maximum.reduce([vectors @ c.T for c in centroids.values()])


def evaluate(
    path: Path,
    encoder: Encoder,
    *,
    max_train_per_intent: int = 20,
    max_test_per_lang: int = 400,
    folds: int = 5,
    seed: int = 7,
) -> dict[str, Any]:
    """Top-1/top-3 accuracy per direction for e5 and TF-IDF, and the cross-validated confidence threshold."""
    rows, skipped = read_eval_file(path)
    rng = random.Random(seed)
    rng.shuffle(rows)
    intents = sorted(
        {r.intent for r in rows if r.split == "train" and r.lang == "es"}
        & {r.intent for r in rows if r.split == "train" and r.lang == "en"}
    )
    if len(intents) < 2:
        raise EvalFileError(f"{path}: needs at least two intents with training rows in both es and en")
    kept: dict[tuple[str, str], int] = defaultdict(int)
    train: list[EvalRow] = []
    test: dict[str, list[EvalRow]] = {lang: [] for lang in LANGS}
    for row in rows:
        if row.intent not in intents:
            continue
        if row.split == "train" and kept[(row.lang, row.intent)] < max_train_per_intent:
            kept[(row.lang, row.intent)] += 1
            train.append(row)
        elif row.split == "test" and len(test[row.lang]) < max_test_per_lang:
            test[row.lang].append(row)
    train_vectors = encoder.queries([r.text for r in train])
    test_vectors = {lang: encoder.queries([r.text for r in test[lang]]) for lang in LANGS}
    index_of = {name: i for i, name in enumerate(intents)}
    by_lang = {lang: [i for i, r in enumerate(train) if r.lang == lang] for lang in LANGS}
    centroids = {
        lang: _centroids([train[i] for i in by_lang[lang]], train_vectors[by_lang[lang]], intents) for lang in LANGS
    }
    tfidf = {
        lang: TfidfIndex([" ".join(train[i].text for i in by_lang[lang] if train[i].intent == n) for n in intents])
        for lang in LANGS
    }
    directions: dict[str, Any] = {}
    for query_lang, article_lang in DIRECTIONS:
        gold = [index_of[r.intent] for r in test[query_lang]]
        e5 = test_vectors[query_lang] @ centroids[article_lang].T
        lexical = np.vstack([tfidf[article_lang].scores(r.text) for r in test[query_lang]])
        directions[f"{query_lang}->{article_lang}"] = {
            "queries": len(gold),
            "e5": {"top1": round(_topk(e5, gold, 1), 4), "top3": round(_topk(e5, gold, 3), 4)},
            "tfidf": {"top1": round(_topk(lexical, gold, 1), 4), "top3": round(_topk(lexical, gold, 3), 4)},
        }
    threshold, cv_f = _cross_validated_threshold(train, train_vectors, intents, folds=folds)
    test_all = np.vstack([test_vectors[lang] for lang in LANGS])
    gold_all = np.array([index_of[r.intent] for lang in LANGS for r in test[lang]])
    scores = _best_over_languages(test_all, centroids)
    best, correct = scores.max(axis=1), scores.argmax(axis=1) == gold_all
    confident = best >= threshold
    return {
        "file": str(path),
        "encoder": encoder.model_id,
        "intents": len(intents),
        "train_rows": len(train),
        "test_rows": {lang: len(test[lang]) for lang in LANGS},
        "skipped": skipped,
        "directions": directions,
        "beats_tfidf": {
            lang: directions[f"{lang}->{lang}"]["e5"]["top1"] > directions[f"{lang}->{lang}"]["tfidf"]["top1"]
            for lang in LANGS
        },
        "threshold": {
            "chosen": threshold,
            "chosen_on": f"{folds}-fold cross-validation on the training part, F0.5",
            "cv_f05": round(cv_f, 4),
            "test_coverage": round(float(confident.mean()) if len(confident) else 0.0, 4),
            "test_precision": round(float(correct[confident].mean()) if confident.any() else 0.0, 4),
        },
    }


def _cross_validated_threshold(
    train: list[EvalRow], vectors: np.ndarray, intents: list[str], *, folds: int
) -> tuple[float, float]:
    """Score each training question against articles built without its fold; pick the threshold on those."""
    best_scores: list[float] = []
    correct: list[bool] = []
    index_of = {name: i for i, name in enumerate(intents)}
    for fold in range(folds):
        held = [i for i in range(len(train)) if i % folds == fold]
        rest = [i for i in range(len(train)) if i % folds != fold]
        centroids: dict[str, np.ndarray] = {}
        for lang in LANGS:
            members = [i for i in rest if train[i].lang == lang]
            present = {train[i].intent for i in members}
            if present != set(intents):
                continue  # too few rows to rebuild every article in this fold: leave the language out
            centroids[lang] = _centroids([train[i] for i in members], vectors[members], intents)
        if not centroids or not held:
            continue
        scores = _best_over_languages(vectors[held], centroids)
        best_scores.extend(scores.max(axis=1).tolist())
        correct.extend((scores.argmax(axis=1) == [index_of[train[i].intent] for i in held]).tolist())
    return choose_threshold(np.array(best_scores), np.array(correct, dtype=bool))
