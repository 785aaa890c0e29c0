"""Distilling the student from the teacher's soft labels: the lookup by text key and the loss on every head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from classifier.groups import text_key
from classifier.train import Example, SoftLabels, build_splits, distil_loss


def _soft_file(path: Path, texts: list[str]) -> Path:
    n = len(texts)
    np.savez(
        path,
        key=np.array([text_key(t) for t in texts], dtype=np.int64),
        sentiment=np.arange(n * 3, dtype=np.float16).reshape(n, 3),
        complaint=np.arange(n, dtype=np.float16) + 0.5,
        anger=-np.arange(n, dtype=np.float16),
    )
    return path


def test_soft_labels_are_found_by_text_and_a_text_the_teacher_never_saw_has_none(tmp_path: Path) -> None:
    soft = _soft_file(tmp_path / "soft.npz", ["uno", "dos  tres", "cuatro"])
    examples = [
        Example("cuatro", "sentiment", 0),
        Example("nunca visto", "complaint", 1),
        Example("dos tres", "anger", 0),
    ]
    got = SoftLabels.for_examples(soft, examples)
    assert got.has.tolist() == [True, False, True]
    assert got.heads["sentiment"][0].tolist() == [6.0, 7.0, 8.0]  # "cuatro" is the third row
    assert got.heads["sentiment"][2].tolist() == [3.0, 4.0, 5.0]  # spacing does not change the key
    assert got.heads["complaint"][1].item() == 0.0 and got.heads["anger"][0].item() == -2.0


def _out(n: int, *, grad: bool = False) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "sentiment": torch.randn(n, 3, requires_grad=grad),
        "complaint": torch.randn(n, requires_grad=grad),
        "anger": torch.randn(n, requires_grad=grad),
    }


def test_the_loss_is_zero_without_soft_labels_and_least_when_the_student_agrees() -> None:
    teacher = _out(4)
    nobody = torch.zeros(4, dtype=torch.bool)
    assert distil_loss(_out(4), teacher, nobody, 2.0).item() == 0.0
    everyone = torch.ones(4, dtype=torch.bool)
    agree = distil_loss({k: v.clone() for k, v in teacher.items()}, teacher, everyone, 2.0)
    disagree = distil_loss({k: -v for k, v in teacher.items()}, teacher, everyone, 2.0)
    assert agree.item() < disagree.item()
    # Agreeing, the sentiment term is 0 and the rest is the teacher's own entropy: it cannot be beaten.
    nudged = distil_loss({k: v + 0.1 for k, v in teacher.items()}, teacher, everyone, 2.0)
    assert agree.item() <= nudged.item()


def test_a_sentiment_example_teaches_the_complaint_head_too() -> None:
    out = _out(2, grad=True)
    teacher = _out(2)
    teacher["complaint"] = torch.tensor([4.0, -4.0])
    distil_loss(out, teacher, torch.tensor([True, False]), 2.0).backward()
    assert out["complaint"].grad is not None
    assert out["complaint"].grad[0].item() != 0.0  # the labelled row pulls its complaint logit toward the teacher's
    assert out["complaint"].grad[1].item() == 0.0  # the row without soft labels is left alone


def test_more_languages_add_their_training_pools_only(tmp_path: Path) -> None:
    root = tmp_path
    (root / "sentiment").mkdir()
    (root / "complaints").mkdir()
    (root / "emotion").mkdir()
    rows = "label\ttext\n" + "".join(
        f"{lab}\ttexto {i}\n" for i, lab in enumerate(["negative", "neutral", "positive"] * 4)
    )
    for name in ("semeval_en", "tass2020_es", "xlmt_en", "xlmt_es", "xlmt_pt"):
        (root / "sentiment" / f"{name}_train.tsv").write_text(rows)
    for name in ("xlmt_en_val", "xlmt_es_val", "xlmt_pt_val"):
        (root / "sentiment" / f"{name}.tsv").write_text(rows)
    (root / "complaints" / "complaints_train.tsv").write_text("id\tlabel\tdomain\ttext\n1\tcomplaint\tx\tfatal\n")
    (root / "emotion" / "tweeteval_en_train.tsv").write_text("label\ttext\nanger\tgrr\n")
    (root / "emotion" / "tweeteval_en_val.tsv").write_text("label\ttext\nanger\tgrr\n")
    plain = build_splits(root, seed=1, english_sample=5)
    more = build_splits(root, seed=1, english_sample=5, more_languages=("pt",))
    assert not any(e.lang == "pt" for e in plain.train)
    assert sum(e.lang == "pt" for e in more.train) == 12 and more.sources["xlmt_pt_train"] == 12
    assert set(more.val) == set(plain.val)  # no Portuguese validation set is read, let alone trained on


def test_the_loss_is_kl_of_teacher_to_student_times_t_squared_plus_soft_bce() -> None:
    """One row by hand: the direction of the KL and the T² factor both change this number."""
    import math

    out = {
        "sentiment": torch.tensor([[2.0, 0.0, -1.0]]),
        "complaint": torch.tensor([0.5]),
        "anger": torch.tensor([-1.0]),
    }
    teacher = {
        "sentiment": torch.tensor([[0.0, 1.0, 0.0]]),
        "complaint": torch.tensor([2.0]),
        "anger": torch.tensor([0.0]),
    }
    t = 2.0

    def softmax(xs: list[float]) -> list[float]:
        e = [math.exp(x / t) for x in xs]
        return [v / sum(e) for v in e]

    def bce(logit: float, target_logit: float) -> float:
        p, q = 1 / (1 + math.exp(-logit)), 1 / (1 + math.exp(-target_logit))
        return -(q * math.log(p) + (1 - q) * math.log(1 - p))

    ps, pt = softmax([2.0, 0.0, -1.0]), softmax([0.0, 1.0, 0.0])
    kl = sum(b * math.log(b / a) for a, b in zip(ps, pt, strict=True))  # KL(teacher || student)
    expected = kl * t * t + bce(0.5, 2.0) + 0.5 * bce(-1.0, 0.0)
    assert distil_loss(out, teacher, torch.tensor([True]), t).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--refit-only", "--hold-out-calib"], "drop --refit-only/--heads-only"),
        (["--heads-only", "--more-languages", "pt"], "drop --refit-only/--heads-only"),
        (["--more-languages", "es,pt"], "no extra XLM-T training pool for es"),
        (["--more-languages", "xx"], "no extra XLM-T training pool for xx"),
    ],
)
def test_the_cli_refuses_options_it_would_ignore_or_could_not_read(tmp_path: Path, args: list[str], says: str) -> None:
    from typer.testing import CliRunner

    from escucha.cli import app

    (tmp_path / "sentiment").mkdir()
    (tmp_path / "sentiment" / "xlmt_pt_train.tsv").write_text("label\ttext\npositive\tbom\n")
    result = CliRunner().invoke(app, ["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m"), *args],
                                env={"COLUMNS": "200", "NO_COLOR": "1"})  # fmt: skip
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not (tmp_path / "m").exists()  # refused before anything was written


def test_epoch_batches_cover_every_example_once_per_pass_and_a_fraction_cuts_the_last_pass() -> None:
    from collections import Counter

    from classifier.train import epoch_batches

    lengths = [i % 7 + 1 for i in range(100)]
    two = epoch_batches(lengths, 10, 2.0, seed=3)
    assert len(two) == 20 and Counter(i for b in two for i in b) == dict.fromkeys(range(100), 2)
    assert len(epoch_batches(lengths, 10, 0.5, seed=3)) == 5
    assert len(epoch_batches(lengths, 10, 1.5, seed=3)) == 15
    assert epoch_batches(lengths, 10, 2.0, seed=3) == two  # the same seed, the same batches: resuming relies on it
