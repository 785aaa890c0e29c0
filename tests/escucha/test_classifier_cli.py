"""JSON contracts of `escucha score`, `escucha evaluate` and `escucha bench classifier` (tiny local model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escucha.cli import app
from tests.support.tiny_model import make_tiny_model

SCORE_KEYS = {"id", "sentiment", "probabilities", "complaint", "urgency", "reasons", "language", "model_id"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-cli"))


@pytest.fixture
def env(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ESCUCHA_MODEL", str(tiny_dir))
    return {"HF_HUB_OFFLINE": "1", "ESCUCHA_MODEL": str(tiny_dir)}


def test_score_stdin_contract_and_bad_lines(env: dict[str, str]) -> None:
    lines = [
        json.dumps({"id": 1, "text": "el pedido nunca llegó, los voy a demandar"}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"id": "x", "text": None}),
        json.dumps({"id": 5, "text": "😡😡"}),
        json.dumps({"id": 6, "text": "help", "is_dm": True, "followers_count": 12000}),
        json.dumps({"id": 7, "text": "ok", "followers_count": "many"}),
        json.dumps({"id": 8, "text": "a" * 10_000}),
    ]
    result = CliRunner().invoke(app, ["score", "--json"], input="\n".join(lines) + "\n", env=env)
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(out) == 8  # the blank line is skipped, every other line answered
    good = [o for o in out if "error" not in o]
    bad = [o for o in out if "error" in o]
    assert [o["id"] for o in good] == [1, 5, 6, 8]
    assert [(o["id"], o["line"]) for o in bad] == [(None, 2), (None, 4), ("x", 5), (7, 8)]
    for o in good:
        assert set(o) >= SCORE_KEYS
        assert set(o["probabilities"]) == {"negative", "neutral", "positive"}
        assert abs(sum(o["probabilities"].values()) - 1) < 1e-3
        assert 0 <= o["urgency"] <= 100 and isinstance(o["reasons"], list)
        assert o["language"] in ("es", "en", "other")
    assert good[0]["crisis"] and "crisis: legal threat" in good[0]["reasons"]
    assert good[0]["language"] == "es"
    assert "DM" in good[2]["reasons"]


def test_score_file_argument(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"id": "a", "text": "thanks, great help"}) + "\n")
    result = CliRunner().invoke(app, ["score", str(f), "--json"], env=env)
    assert result.exit_code == 0, result.output
    [row] = [json.loads(x) for x in result.stdout.splitlines()]
    assert row["id"] == "a" and row["model_id"].startswith("tiny-test")


def test_evaluate_contract(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "val.tsv"
    f.write_text(
        "label\ttext\nnegative\tthe order never arrived\nneutral\t@user http\npositive\tthanks great\n"
        "mixed\tskipped row\npositive\tgracias genial\n"
    )
    result = CliRunner().invoke(app, ["evaluate", str(f), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"n", "macro_recall", "macro_f1", "accuracy", "per_class"} <= set(report)
    assert report["n"] == 4 and report["skipped"] == 1
    assert set(report["per_class"]) == {"negative", "neutral", "positive"}
    assert 0 <= report["macro_recall"] <= 1 and 0 <= report["macro_f1"] <= 1


def test_evaluate_bootstrap_gives_an_interval_around_the_figure(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "val.tsv"
    rows = [("negative", "the order never arrived"), ("neutral", "@user http"), ("positive", "thanks great")] * 10
    f.write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows))
    result = CliRunner().invoke(app, ["evaluate", str(f), "--json", "--bootstrap", "50"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    low, high = report["interval_95"]["macro_f1"]
    assert low <= report["macro_f1"] <= high and report["interval_95"]["resamples"] == 50


def test_train_heads_only_refuses_options_it_cannot_honour(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--heads-only", "--refit-only", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2 and "--heads-only" in result.output


def test_evaluate_counts_every_skipped_row_with_why_and_never_scores_empty_texts(
    env: dict[str, str], tmp_path: Path
) -> None:
    f = tmp_path / "val.tsv"
    f.write_text(
        "label\ttext\n"
        "negative\tthe order never arrived\n"
        "positive no tab in this row\n"  # line 3
        "neutral\t\n"  # line 4: nothing to score
        "positive\t   \n"  # line 5: only blanks
        "mixed\tnot a sentiment\n"  # line 6
        "\n"  # line 7
        "positive\tthanks great\n"
    )
    result = CliRunner().invoke(app, ["evaluate", str(f), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 2  # only the two rows with a label and a text were scored
    assert report["skipped"] == 5
    assert [(s["line"], s["why"]) for s in report["skipped_rows"]] == [
        (3, "no tab: expected label<TAB>text"),
        (4, "empty text"),
        (5, "empty text"),
        (6, "label 'mixed' is not negative, neutral or positive"),
        (7, "blank line"),
    ]
    text = CliRunner().invoke(app, ["evaluate", str(f)], env=env)
    assert text.exit_code == 0 and "skipped line 3: no tab" in text.output


def test_evaluate_with_nothing_to_score_says_so(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "empty.tsv"
    f.write_text("label\ttext\npositive\t\nneutral\n")
    result = CliRunner().invoke(app, ["evaluate", str(f), "--json"], env=env)
    assert result.exit_code == 2
    assert "no row to score" in result.output and "Traceback" not in result.output


def test_evaluate_rejects_bad_header(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "bad.tsv"
    f.write_text("sentiment\ttweet\npositive\thi\n")
    result = CliRunner().invoke(app, ["evaluate", str(f), "--json"], env=env)
    assert result.exit_code == 2


def test_bench_classifier_contract(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["bench", "classifier", "--json", "--n", "64", "--pipeline-n", "8"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("posts_per_s", "p50_batch_ms", "p95_batch_ms", "peak_rss_mb", "vs_pipeline", "best_batch_size"):
        assert key in report
    assert report["posts_per_s"] > 0 and report["vs_pipeline"] > 0
