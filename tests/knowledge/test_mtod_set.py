"""The public evaluation set: rebuilt from the release's own file format, and the committed file is what it says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from knowledge.evaluate import read_eval_file
from knowledge.mtod_set import SourceError, build_rows, main, write_rows

EVAL_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "eval"


def _release(root: Path, rows: dict[str, dict[str, list[tuple[str, str]]]]) -> Path:
    """Write a small release folder in the PyText TSV format: ``rows[lang][split] = [(intent, text), …]``."""
    for lang, splits in rows.items():
        (root / lang).mkdir(parents=True, exist_ok=True)
        for split, pairs in splits.items():
            lines = [f"{intent}\t0:4:x\t{text} \t{lang}_XX\t{{}}" for intent, text in pairs]
            (root / lang / f"{split}-{lang}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _pairs(intent: str, word: str, n: int) -> list[tuple[str, str]]:
    return [(intent, f"{word} {i}") for i in range(n)]


def _small(root: Path) -> Path:
    return _release(
        root,
        {
            lang: {
                "eval": _pairs("alarm/set", f"{lang} set", 4)
                + _pairs("weather/find", f"{lang} sky", 4)
                # Only one example in this language and split: the intent is left out, in both languages.
                + [("weather/sunset", f"{lang} sunset")],
                "test": _pairs("alarm/set", f"{lang} set", 6)  # two repeat the dev texts: never questions
                + _pairs("weather/find", f"{lang} SKY", 7)  # the same texts in capitals: four go
                + [("alarm/set", f"{lang}   new    alarm")] * 3  # repeated, with stray spaces
                + [("weather/sunset", f"{lang} sunset later")] * 2,
            }
            for lang in ("es", "en")
        },
    )


def test_rows_are_balanced_questions_are_unseen_and_the_draw_repeats(tmp_path: Path) -> None:
    source = _small(tmp_path / "release")
    rows = build_rows(source, per_intent={"train": 3, "test": 3})
    assert rows == build_rows(source, per_intent={"train": 3, "test": 3})  # seeded
    assert Counter((lang, intent, split) for lang, intent, split, _ in rows) == {
        (lang, intent, split): 3
        for lang in ("es", "en")
        for intent in ("alarm/set", "weather/find")
        for split in ("train", "test")
    }
    for lang in ("es", "en"):
        articles = {text.casefold() for la, _, split, text in rows if la == lang and split == "train"}
        questions = [text for la, _, split, text in rows if la == lang and split == "test"]
        assert not [q for q in questions if q.casefold() in articles]
        assert len(set(questions)) == len(questions)
    assert all("  " not in text and text == text.strip() for *_, text in rows)
    assert "es new alarm" in {text for *_, text in rows}  # three spellings of one request: one question


def test_the_written_file_is_read_by_evaluate_answers_without_a_skip(tmp_path: Path) -> None:
    out = tmp_path / "eval.tsv"
    write_rows(build_rows(_small(tmp_path / "release"), per_intent={"train": 3, "test": 3}), out)
    rows, skipped = read_eval_file(out)
    assert len(rows) == 24 and skipped == []


def test_a_broken_release_is_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _small(tmp_path / "release")
    (source / "en" / "test-en.tsv").write_text("alarm/set\t\t\ten_XX\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"test-en\.tsv:1: expected intent<TAB>slots<TAB>utterance"):
        build_rows(source)
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "out.tsv")]) == 1
    assert "eval-es.tsv: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out.tsv").exists()
    with pytest.raises(SourceError, match="fewer than two intents"):
        build_rows(_small(tmp_path / "again"), per_intent={"train": 5, "test": 5})


def test_the_committed_public_set_is_what_its_notice_says() -> None:
    rows, skipped = read_eval_file(EVAL_DIR / "mtod_eval.tsv")
    assert skipped == [] and len(rows) == 800
    counts = Counter((r.lang, r.intent, r.split) for r in rows)
    assert len({r.intent for r in rows}) == 10 and set(counts.values()) == {20}
    for lang in ("es", "en"):
        articles = {r.text.casefold() for r in rows if r.lang == lang and r.split == "train"}
        assert not [r.text for r in rows if r.lang == lang and r.split == "test" and r.text.casefold() in articles]
    notice = (EVAL_DIR / "mtod_eval.NOTICE.md").read_text(encoding="utf-8")
    assert "CC-BY-SA" in notice and "Schuster" in notice and "python -m knowledge.mtod_set" in notice
