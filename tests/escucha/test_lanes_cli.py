"""JSON contracts of `escucha evaluate-relevance` and `escucha evaluate-crisis` (lexicon scorer), bad input included."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escucha.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def lexicon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCUCHA_SCORER", "lexicon")


def test_evaluate_relevance_on_the_committed_set() -> None:
    result = CliRunner().invoke(app, ["evaluate-relevance", str(ROOT / "classifier/eval/relevance.tsv"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert set(report["for_brand"]) == {"all", "es", "en"}
    figures = report["for_brand"]["all"]
    assert figures["n"] == 138 and figures["positives"] == 31
    assert figures["recall_95"][0] <= figures["recall"] <= figures["recall_95"][1]
    assert report["skipped_rows"] == [] and report["model_id"].startswith("lexicon")


def test_evaluate_crisis_with_texts_per_kind_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "crisis.tsv"
    path.write_text(
        "lang\tlabel\tkind\ttext\n"
        "es\tcrisis\tlegal\tlos voy a denunciar, ya hablé con mi abogado\n"
        "en\tcrisis\tdata\tmy account was hacked and there are charges I never made\n"
        "en\tnot_crisis\tother\tthis Cowboys game is killing me\n"
        "en\tperhaps\tother\tno label\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["evaluate-crisis", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["crisis"]["all"]["recall"] == 1.0 and report["crisis"]["all"]["precision"] == 1.0
    assert set(report["kinds"]) == {"legal", "data"}
    assert [row["line"] for row in report["skipped_rows"]] == [5]


def test_evaluate_crisis_rebuilds_an_id_file_and_refuses_without_the_corpora(tmp_path: Path) -> None:
    text = "me robaron la cuenta y hay cargos no reconocidos"
    data = tmp_path / "data" / "sentiment"
    data.mkdir(parents=True)
    (data / "tass2020_es_train.tsv").write_text(f"label\ttext\nnegative\t{text}\n", encoding="utf-8")
    ids = tmp_path / "ids.tsv"
    sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]
    ids.write_text(f"id\tsha1\tlang\tlabel\tkind\tsplit\ntass:2\t{sha}\tes\tcrisis\tdata\ttest\n", encoding="utf-8")
    runner = CliRunner()
    ok = runner.invoke(app, ["evaluate-crisis", str(ids), "--data-dir", str(tmp_path / "data"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output.strip().splitlines()[-1])["crisis"]["es"]["recall"] == 1.0
    tune = runner.invoke(app, ["evaluate-crisis", str(ids), "--data-dir", str(tmp_path / "data"), "--split", "tune"])
    assert tune.exit_code == 2 and "no labelled row in split 'tune'" in tune.output
    missing = runner.invoke(app, ["evaluate-crisis", str(ids), "--data-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "ESCUCHA_DATA_DIR" in missing.output
