"""The lane evaluations: intervals, bad input listed not lost, and the crisis set rebuilt from its ids."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from classifier.lane_eval import binary_report, crisis_report, read_rows, rebuild, wilson
from classifier.lexicon_scorer import LexiconScorer

LABELS = Path(__file__).resolve().parents[2] / "classifier" / "eval" / "crisis_labels.tsv"


def test_wilson_interval() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(8, 10) or [0.0, 0.0]
    assert low == pytest.approx(0.490, abs=0.001) and high == pytest.approx(0.943, abs=0.001)
    assert wilson(10, 10) == [0.722, 1.0]


def test_binary_report_puts_recall_first() -> None:
    report = binary_report([True, True, False, False], [True, False, True, False])
    assert list(report)[:2] == ["recall", "recall_95"]
    assert (report["recall"], report["precision"], report["tp"], report["fp"], report["fn"]) == (0.5, 0.5, 1, 1, 1)


def test_bad_rows_are_listed_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(
        "lang\tlabel\tkind\ttext\n"
        "es\tcrisis\tlegal\tlos voy a denunciar\n"
        "en\tmaybe\tlegal\tsee you in court\n"
        "en\tnot_crisis\tother\t   \n"
        "en\tcrisis\n",
        encoding="utf-8",
    )
    rows, skipped = read_rows(path, labels=("crisis", "not_crisis"), about="kind")
    assert [r.text for r in rows] == ["los voy a denunciar"]
    assert [s["line"] for s in skipped] == [3, 4, 5]
    with pytest.raises(ValueError, match="no text column"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("lang\tlabel\tkind\n", encoding="utf-8")
        read_rows(bad, labels=("crisis",), about="kind")


def test_rebuild_checks_each_text_against_its_hash(tmp_path: Path) -> None:
    corpora = tmp_path / "data"
    (corpora / "sentiment").mkdir(parents=True)
    texts = ["nos vemos en el juzgado, ya hablé con mi abogado", "qué calor hace hoy"]
    (corpora / "sentiment" / "tass2020_es_train.tsv").write_text(
        "label\ttext\n" + "".join(f"negative\t{t}\n" for t in texts), encoding="utf-8"
    )
    sha = [hashlib.sha1(t.encode()).hexdigest()[:12] for t in texts]
    labels = tmp_path / "ids.tsv"
    labels.write_text(
        "id\tsha1\tlang\tlabel\tkind\tsplit\n"
        f"tass:2\t{sha[0]}\tes\tcrisis\tlegal\ttest\n"
        f"tass:3\t{sha[0]}\tes\tnot_crisis\tother\ttest\n"  # the hash of another text: the corpus changed
        f"tass:9\t{sha[1]}\tes\tnot_crisis\tother\ttest\n"  # past the end of the file
        f"nowhere:1\t{sha[1]}\tes\tnot_crisis\tother\ttest\n",
        encoding="utf-8",
    )
    rows, problems = rebuild(labels, corpora)
    assert [(r.text, r.about, r.split) for r in rows] == [(texts[0], "legal", "test")]
    assert [p["line"] for p in problems] == [3, 4, 5]
    report = crisis_report(rows, LexiconScorer())
    assert report["crisis"]["all"]["recall"] == 1.0 and report["kinds"]["legal"]["positives"] == 1


def test_the_committed_set_has_both_halves_and_both_languages() -> None:
    lines = LABELS.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    assert header == ["id", "sha1", "lang", "label", "kind", "split"]
    assert len(rows) >= 200
    assert {r[2] for r in rows} == {"es", "en"} and {r[5] for r in rows} == {"tune", "test"}
    assert sum(r[3] == "crisis" for r in rows) == 25
    assert len({r[0] for r in rows}) == len(rows)
