"""`escucha evaluate-answers`: figures per direction against TF-IDF, skipped rows named, threshold from training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from escucha.cli import app
from knowledge.evaluate import choose_threshold
from knowledge.tfidf import TfidfIndex, tokens

EVAL_SET = Path(__file__).resolve().parents[2] / "knowledge" / "eval" / "support_eval.tsv"


def test_tfidf_tokens_fold_accents_and_pair_words() -> None:
    assert tokens("Contraseña OLVIDADA") == ["contrasena", "olvidada", "contrasena olvidada"]
    index = TfidfIndex(["reset my password", "store opening hours"])
    assert int(np.argmax(index.scores("I forgot my password"))) == 0
    assert not index.scores("zzz").any()


def test_the_threshold_keeps_confident_answers_precise() -> None:
    best = np.array([0.95, 0.94, 0.93, 0.90, 0.89, 0.88])
    correct = np.array([True, True, True, False, True, False])
    threshold, f = choose_threshold(best, correct)
    assert threshold == pytest.approx(0.93)
    assert 0 < f <= 1
    assert choose_threshold(best, np.zeros(6, dtype=bool)) == (1.0, 0.0)


def test_a_file_without_the_header_is_refused_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "eval.tsv"
    bad.write_text("es\trefund\ttrain\tquiero mi dinero\n")
    result = CliRunner().invoke(app, ["evaluate-answers", str(bad), "--json"])
    assert result.exit_code != 0
    assert "header lang<TAB>intent<TAB>split<TAB>text" in result.output


def test_the_shipped_evaluation_reports_every_direction_and_beats_tfidf(tmp_path: Path) -> None:
    extended = tmp_path / "eval.tsv"
    extended.write_text(EVAL_SET.read_text() + "fr\trefund\ttest\tje veux mon argent\nes\trefund\ttrain\n")
    result = CliRunner().invoke(app, ["evaluate-answers", str(extended), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["directions"]) == {"es->es", "en->en", "es->en", "en->es"}
    assert report["skipped"] == [
        {"line": 202, "why": "language 'fr'"},
        {"line": 203, "why": "3 cells, expected 4"},
    ]
    for figures in report["directions"].values():
        assert figures["queries"] == 40
        assert figures["e5"]["top1"] <= figures["e5"]["top3"]
    assert report["beats_tfidf"] == {"es": True, "en": True}
    # Cross-lingual: TF-IDF shares almost no words across languages; meaning does.
    assert report["directions"]["es->en"]["e5"]["top1"] > report["directions"]["es->en"]["tfidf"]["top1"] + 0.3
    assert 0.8 < report["threshold"]["chosen"] < 1.0
    assert report["threshold"]["chosen_on"].startswith("5-fold cross-validation on the training part")


def test_the_public_set_reports_every_direction_and_meaning_carries_across_languages() -> None:
    result = CliRunner().invoke(app, ["evaluate-answers", str(EVAL_SET.with_name("mtod_eval.tsv")), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["skipped"] == [] and report["intents"] == 10 and report["test_rows"] == {"es": 200, "en": 200}
    directions = report["directions"]
    for figures in directions.values():
        assert figures["queries"] == 200
        assert 0.7 <= figures["e5"]["top1"] <= figures["e5"]["top3"]
    assert report["beats_tfidf"] == {"es": True, "en": True}
    for crossing in ("es->en", "en->es"):  # the README's figures: 0.775–0.790 against 0.125–0.175
        assert directions[crossing]["e5"]["top1"] > directions[crossing]["tfidf"]["top1"] + 0.5
