"""Cross-validated choice of the sentiment head over cached features: pools, language weights, balance, L2, coupling.

Every candidate is fitted on four folds of the pools and scored on the fifth (``classifier/pools.py`` draws the
folds by text, so duplicates never straddle them); the figures are computed on the out-of-fold predictions of
all five. What we care about, in order: Spanish macro-F1 (TASS + XLM-T es), then English macro-recall (SemEval +
XLM-T en). The reported validation sets are never read here.

The complaint ⇒ negative coupling is tried two ways: complaints added to the sentiment fit as negatives
(``complaint_weight``), and a joint calibration that adds ``alpha`` · p(complaint) to the negative logit. Its
strength is the largest that raises the share of complaints read as negative without lowering the Spanish or
English figure by more than the folds' noise.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.base import SENTIMENTS
from classifier.metrics import sentiment_metrics
from classifier.pools import FOLDS, REPORTED, PoolTable
from classifier.refit import fit_softmax

log = logging.getLogger(__name__)

NEGATIVE, POSITIVE = 0, 2
# Relative total weight of each language in the fit (rows of a language share its total), by scheme.
LANG_SCHEMES: dict[str, dict[str, float]] = {
    "natural": {},  # every row counts once: English (SemEval) dominates
    "equal": {"*": 1.0},
    "es-en": {"es": 1.0, "en": 1.0, "*": 0.25},
    "es-first": {"es": 2.0, "en": 1.0, "*": 0.25},
}
ALPHAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
CONFIDENT_POSITIVE = 0.8  # a complaint the head reads as positive at least this sure is not relabelled negative
MAX_ITER = 100
CV_SEMEVAL_CAP = 20_000
CV_VERSION = "2"  # bump when a fit or the folds change: cached out-of-fold logits are keyed by it


@dataclass(frozen=True)
class HeadConfig:
    """One candidate sentiment head."""

    pools: tuple[str, ...]  # source stems trained on
    semeval: str = "all"  # "all", or "v1-sample": only the 5,000 SemEval tweets v1 trained on
    lang_weight: str = "natural"
    balance: bool = True  # classes balanced within each language
    l2: float = 0.1
    complaint_weight: float = 0.0  # weight of a training complaint added as a negative, per row, vs the mean row

    def name(self) -> str:
        """A short label for tables."""
        parts = [
            "+".join(_short(p) for p in self.pools) + ("(semeval v1 sample)" if self.semeval == "v1-sample" else ""),
            f"lang={self.lang_weight}",
            "balanced" if self.balance else "natural classes",
            f"L2={self.l2}",
        ]
        if self.complaint_weight:
            parts.append(f"complaints-as-negative×{self.complaint_weight}")
        return ", ".join(parts)


def _short(stem: str) -> str:
    return stem.replace("_train", "").replace("tass2020_es", "tass").replace("semeval_en", "semeval")


def row_weights(table: PoolTable, rows: np.ndarray, cfg: HeadConfig) -> np.ndarray:
    """Per-row weights for the sentiment rows ``rows``: class balance within language, then language shares."""
    lang, label = table.lang[rows], table.label[rows]
    w = np.ones(len(rows))
    if cfg.balance:
        for code in np.unique(lang):
            in_lang = lang == code
            present = np.unique(label[in_lang])
            for c in present:
                sel = in_lang & (label == c)
                w[sel] = in_lang.sum() / (len(present) * sel.sum())
    scheme = LANG_SCHEMES[cfg.lang_weight]
    if scheme:
        for code in np.unique(lang):
            sel = lang == code
            share = scheme.get(str(code), scheme.get("*", 1.0))
            w[sel] *= share / w[sel].sum()
        w *= len(rows) / w.sum()  # the same total as unit weights: L2 keeps its meaning across schemes
    return w


def training_rows(table: PoolTable, cfg: HeadConfig, fold: int | None) -> np.ndarray:
    """Sentiment rows a candidate trains on: its pools, outside ``fold`` (``None``: every fold), never calibration."""
    ok = (table.label >= 0) & np.isin(table.source, cfg.pools) & (table.fold >= 0)
    if fold is not None:
        ok &= table.fold != fold
    if cfg.semeval == "v1-sample":
        ok &= (table.source != "semeval_en_train") | table.seen
    elif fold is not None and table.draw is not None:
        # The search's fold fits see a fixed hash-drawn CV_SEMEVAL_CAP of SemEval's 49.6k tweets: on 2 shared
        # cores the full pool made each fit ~30 s. Every SemEval tweet is still scored out of fold; the final
        # fit (fold None) uses them all.
        semeval = table.source == "semeval_en_train"
        share = CV_SEMEVAL_CAP / max(int(semeval.sum()), 1)
        ok &= ~semeval | (table.draw < share)
    return np.flatnonzero(ok)


def complaint_rows(table: PoolTable, fold: int | None, positive_prob: np.ndarray | None) -> np.ndarray:
    """Training complaints to add as negatives: outside ``fold``, not ones the head reads as confidently positive."""
    ok = (table.complaint == 1) & (table.fold >= 0)
    if fold is not None:
        ok &= table.fold != fold
    if positive_prob is not None:
        ok &= positive_prob < CONFIDENT_POSITIVE
    return np.flatnonzero(ok)


def fit_head(
    table: PoolTable, cfg: HeadConfig, fold: int | None, positive_prob: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``cfg`` on its training rows (outside ``fold``); returns Linear-layout (weight [3, hidden], bias [3]).

    Fold fits (the search) run in float32 for ``MAX_ITER`` steps; the final fit (``fold`` None) in float64 to
    convergence.
    """
    rows = training_rows(table, cfg, fold)
    weights = row_weights(table, rows, cfg)
    labels = table.label[rows]
    if cfg.complaint_weight:
        extra = complaint_rows(table, fold, positive_prob)
        rows = np.concatenate([rows, extra])
        weights = np.concatenate([weights, np.full(len(extra), cfg.complaint_weight * weights.mean())])
        labels = np.concatenate([labels, np.full(len(extra), NEGATIVE)])
    return fit_softmax(
        torch.from_numpy(table.x[rows]),
        torch.from_numpy(labels),
        cfg.l2,
        torch.from_numpy(weights),
        len(SENTIMENTS),
        max_iter=MAX_ITER if fold is not None else 500,
        dtype=torch.float32 if fold is not None else torch.float64,
    )


def out_of_fold_logits(
    table: PoolTable, cfg: HeadConfig, positive_prob: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Logits [n, 3] for every row from the fold model that did not train on it (reported rows: the folds' mean)."""
    logits = np.zeros((len(table.x), len(SENTIMENTS)))
    reported = table.fold == REPORTED
    heads = []
    x = torch.from_numpy(table.x)
    for k in range(FOLDS):
        w, b = fit_head(table, cfg, k, positive_prob)
        heads.append((w, b))
        out = (x @ w.T + b).double().numpy()
        logits[table.fold == k] = out[table.fold == k]
        logits[reported] += out[reported] / FOLDS
    return logits, heads


def _metrics(gold: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    return sentiment_metrics([SENTIMENTS[i] for i in gold], [SENTIMENTS[i] for i in pred])


def evaluate(table: PoolTable, logits: np.ndarray) -> dict[str, Any]:
    """The CV figures of out-of-fold ``logits``: Spanish and English overall, per source, per fold, per language."""
    pred = logits.argmax(1)
    scored = (table.label >= 0) & (table.fold >= 0)
    report: dict[str, Any] = {}

    def block(sel: np.ndarray, key: str) -> dict[str, Any]:
        m = _metrics(table.label[sel], pred[sel])
        return {"n": m["n"], "macro_f1": m["macro_f1"], "macro_recall": m["macro_recall"], "key": m[key]}

    es, en = scored & (table.lang == "es"), scored & (table.lang == "en")
    report["es_macro_f1"] = block(es, "macro_f1")["macro_f1"]
    report["en_macro_recall"] = block(en, "macro_recall")["macro_recall"]
    report["es_by_fold"] = [block(es & (table.fold == k), "macro_f1")["macro_f1"] for k in range(FOLDS)]
    report["en_by_fold"] = [block(en & (table.fold == k), "macro_recall")["macro_recall"] for k in range(FOLDS)]
    report["by_source"] = {
        str(s): {k: v for k, v in block(scored & (table.source == s), "macro_f1").items() if k != "key"}
        for s in np.unique(table.source[table.label >= 0])
    }
    unseen = scored & ~table.seen
    report["en_unseen_macro_recall"] = block(unseen & (table.lang == "en"), "macro_recall")["macro_recall"]
    report["es_unseen_macro_f1"] = block(unseen & (table.lang == "es"), "macro_f1")["macro_f1"]
    report["es_unseen_n"] = int((unseen & (table.lang == "es")).sum())
    comp = (table.complaint >= 0) & (table.fold >= 0)
    rep = (table.complaint >= 0) & (table.fold == REPORTED)
    for key, sel in (("complaints_cv", comp), ("complaints_reported", rep)):
        yes, no = sel & (table.complaint == 1), sel & (table.complaint == 0)
        report[key] = {
            "complaints": int(yes.sum()),
            "negative_share": round(float((pred[yes] == NEGATIVE).mean()), 4) if yes.any() else None,
            "neutral_share": round(float((pred[yes] == 1).mean()), 4) if yes.any() else None,
            "not_complaints_negative_share": round(float((pred[no] == NEGATIVE).mean()), 4) if no.any() else None,
        }
    return report


def coupled(logits: np.ndarray, p_complaint: np.ndarray, alpha: float) -> np.ndarray:
    """Joint calibration: ``alpha`` · p(complaint) added to the negative logit (before any temperature)."""
    out = logits.copy()
    out[:, NEGATIVE] += alpha * p_complaint
    return out


def paired_noise(base: Sequence[float], other: Sequence[float]) -> tuple[float, float]:
    """(mean fold difference other − base, 1.96 × its standard error): the folds' noise on a difference."""
    d = np.asarray(other) - np.asarray(base)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(len(d)))


def _rounded(pair: tuple[float, float]) -> list[float]:
    return [round(v, 4) for v in pair]


def within_noise(base: dict[str, Any], other: dict[str, Any]) -> bool:
    """True when ``other`` lowers neither the Spanish nor the English CV figure by more than the folds' noise."""
    for key in ("es_by_fold", "en_by_fold"):
        mean, noise = paired_noise(base[key], other[key])
        if mean < -max(noise, 0.002):
            return False
    return True


def better(a: dict[str, Any], b: dict[str, Any], tie: float = 0.002) -> bool:
    """Spanish first: ``a`` beats ``b`` on Spanish macro-F1, or ties within ``tie`` and beats it on English."""
    if abs(a["es_macro_f1"] - b["es_macro_f1"]) > tie:
        return bool(a["es_macro_f1"] > b["es_macro_f1"])
    return bool(a["en_macro_recall"] > b["en_macro_recall"])


@dataclass
class Trial:
    """One candidate's CV result."""

    stage: str
    config: HeadConfig
    report: dict[str, Any]
    seconds: float
    logits: np.ndarray | None = None

    def row(self) -> dict[str, Any]:
        """What the model card's CV table shows."""
        r = self.report
        return {
            "stage": self.stage,
            "config": self.config.name(),
            "es_macro_f1": r["es_macro_f1"],
            "en_macro_recall": r["en_macro_recall"],
            "en_unseen_macro_recall": r["en_unseen_macro_recall"],
            "tass_f1": r["by_source"].get("tass2020_es_train", {}).get("macro_f1"),
            "xlmt_es_f1": r["by_source"].get("xlmt_es_train", {}).get("macro_f1"),
            "xlmt_en_recall": r["by_source"].get("xlmt_en_train", {}).get("macro_recall"),
            "others_f1": {
                s.split("_")[1]: v["macro_f1"]
                for s, v in r["by_source"].items()
                if s.startswith("xlmt_") and s.split("_")[1] not in ("en", "es")
            },
            "complaints_negative": r["complaints_cv"]["negative_share"],
            "seconds": round(self.seconds, 1),
        }


def run_trial(
    table: PoolTable,
    stage: str,
    cfg: HeadConfig,
    positive_prob: np.ndarray | None = None,
    cache: Path | None = None,
) -> Trial:
    """Cross-validate one candidate; with ``cache``, out-of-fold logits already computed there are reused."""
    began = time.monotonic()
    key = hashlib.sha256(repr((CV_VERSION, asdict(cfg), len(table.x))).encode())
    for part in (table.label, table.complaint, table.fold, table.x[:, :4]):  # the pools' content, cheaply
        key.update(np.ascontiguousarray(part).tobytes())
    if positive_prob is not None:
        key.update(np.ascontiguousarray(positive_prob).tobytes())
    stored = cache / f"{key.hexdigest()[:20]}.npy" if cache is not None else None
    if stored is not None and stored.is_file():
        logits = np.load(stored)
    else:
        logits, _ = out_of_fold_logits(table, cfg, positive_prob)
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            np.save(stored, logits)
    trial = Trial(stage, cfg, evaluate(table, logits), time.monotonic() - began, logits)
    log.info("cv %s | %s: %s", stage, cfg.name(), {k: v for k, v in trial.row().items() if k != "config"})
    return trial


ALL_SENTIMENT = (
    "semeval_en_train",
    "tass2020_es_train",
    "xlmt_ar_train",
    "xlmt_de_train",
    "xlmt_en_train",
    "xlmt_es_train",
    "xlmt_fr_train",
    "xlmt_hi_train",
    "xlmt_it_train",
    "xlmt_pt_train",
)
EN_ES = ("semeval_en_train", "tass2020_es_train", "xlmt_en_train", "xlmt_es_train")


def search(table: PoolTable, p_complaint: np.ndarray, cache: Path | None = None) -> dict[str, Any]:
    """Greedy staged search (data mix → language weights → balance → L2 → coupling); returns the choice and table."""
    trials: list[Trial] = []

    def best_of(stage: str, configs: Sequence[HeadConfig], positive: np.ndarray | None = None) -> Trial:
        done = [run_trial(table, stage, c, positive, cache) for c in configs]
        trials.extend(done)
        top = done[0]
        for t in done[1:]:
            if better(t.report, top.report):
                top = t
        return top

    v1 = HeadConfig(pools=EN_ES, semeval="v1-sample", lang_weight="natural", balance=True, l2=0.1)
    baseline = best_of("0 v1 recipe", [v1])
    # The mixes are compared with Spanish and English weighted alike, so 49k SemEval tweets cannot drown
    # Spanish before the language weights get their own stage.
    even = replace(v1, lang_weight="es-en")
    mix = best_of(
        "1 data mix",
        [
            even,
            replace(even, semeval="all"),
            replace(even, semeval="all", pools=ALL_SENTIMENT),
        ],
    )
    mix = mix if better(mix.report, baseline.report) else baseline
    langs = best_of(
        "2 language weights",
        [replace(mix.config, lang_weight=s) for s in LANG_SCHEMES if s != mix.config.lang_weight],
    )
    langs = langs if better(langs.report, mix.report) else mix
    bal = best_of("3 class balance", [replace(langs.config, balance=not langs.config.balance)])
    bal = bal if better(bal.report, langs.report) else langs
    reg = best_of("4 L2", [replace(bal.config, l2=v) for v in (0.03, 0.3) if v != bal.config.l2])
    chosen = reg if better(reg.report, bal.report) else bal
    assert chosen.logits is not None
    # Coupling. (a) complaints as negatives, unless the chosen head reads them as confidently positive.
    probs = torch.softmax(torch.from_numpy(chosen.logits), dim=1).numpy()
    positive = probs[:, POSITIVE]
    added = [
        best_of("5a complaints as negatives", [replace(chosen.config, complaint_weight=cw)], positive)
        for cw in (1.0, 5.0)
    ]
    # (b) joint calibration over each head so far: alpha chosen on the out-of-fold logits.
    candidates = [chosen, *added]
    coupling: list[dict[str, Any]] = []
    pick: tuple[Trial, float, dict[str, Any]] = (chosen, 0.0, chosen.report)
    for trial in candidates:
        assert trial.logits is not None
        for alpha in ALPHAS:
            rep = evaluate(table, coupled(trial.logits, p_complaint, alpha)) if alpha else trial.report
            ok = within_noise(chosen.report, rep)
            coupling.append(
                {
                    "config": trial.config.name(),
                    "alpha": alpha,
                    "es_macro_f1": rep["es_macro_f1"],
                    "en_macro_recall": rep["en_macro_recall"],
                    "es_delta_noise": _rounded(paired_noise(chosen.report["es_by_fold"], rep["es_by_fold"])),
                    "en_delta_noise": _rounded(paired_noise(chosen.report["en_by_fold"], rep["en_by_fold"])),
                    "complaints_negative_share": rep["complaints_cv"]["negative_share"],
                    "not_complaints_negative_share": rep["complaints_cv"]["not_complaints_negative_share"],
                    "within_noise": ok,
                }
            )
            share = rep["complaints_cv"]["negative_share"] or 0.0
            if ok and share > (pick[2]["complaints_cv"]["negative_share"] or 0.0) + 0.005:
                pick = (trial, alpha, rep)
    final, alpha, final_report = pick
    vs_v1 = {
        key: _rounded(paired_noise(baseline.report[f"{key}_by_fold"], final_report[f"{key}_by_fold"]))
        for key in ("es", "en")
    }
    return {
        "vs_v1_recipe": vs_v1,
        "chosen": asdict(final.config),
        "alpha": alpha,
        "chosen_report": {k: v for k, v in final_report.items()},
        "baseline_report": baseline.report,
        "table": [t.row() for t in trials],
        "coupling": coupling,
        "positive_prob": positive if final.config.complaint_weight else None,
        "rule": "Spanish CV macro-F1 first (ties within 0.002 go to English CV macro-recall); coupling: the largest "
        "share of training complaints read as negative whose Spanish and English fold figures drop by no more than "
        "1.96 standard errors of the paired fold difference",
    }
