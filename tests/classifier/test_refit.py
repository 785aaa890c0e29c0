"""The complaint-head refit: a regularised logistic fit folded into the head, its strength chosen by CV."""

from __future__ import annotations

from pathlib import Path

import torch

from classifier.metrics import roc_auc
from classifier.refit import L2_GRID, choose_l2, fit_logistic, refit_complaint_head
from tests.support.tiny_model import make_tiny_model


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).float()
    x = torch.randn((n, 8), generator=g) * torch.tensor([5.0, 1, 1, 1, 1, 1, 1, 1]) + 100.0
    x[:, 1] += 1.5 * y  # the signal lives in one feature, on a large offset and beside a noisy wide one
    return x, y


def test_fit_is_folded_back_to_raw_features() -> None:
    x, y = _blobs(600, 1)
    w, b = fit_logistic(x, y, l2=0.1)
    logits = x @ w + b
    assert roc_auc(y.tolist(), logits.tolist()) > 0.8
    assert int(torch.argmax(w.abs())) == 1  # standardisation undone: the signal feature dominates
    p = torch.sigmoid(logits)
    assert abs(float(p.mean()) - float(y.mean())) < 0.03  # an intercept that matches the base rate


def test_l2_chosen_by_cross_validation_only_from_training_data() -> None:
    x, y = _blobs(300, 2)
    best, scores = choose_l2(x, y, seed=13)
    assert best in L2_GRID and set(scores) == {str(v) for v in L2_GRID}
    assert scores[str(best)] == max(scores.values())
    assert choose_l2(x, y, seed=13) == (best, scores)  # seeded folds: reproducible


def test_refit_replaces_the_head_and_ranks_the_training_labels(tmp_path: Path) -> None:
    from classifier.model import load_model

    model, tokenizer, spec = load_model(make_tiny_model(tmp_path / "tiny"))
    texts = [
        f"{'awful never arrived' if i % 3 == 0 else 'thanks great gracias'} {'help ' * (i % 4)}" for i in range(90)
    ]
    labels = [int(i % 3 == 0) for i in range(90)]
    before = model.complaint.weight.detach().clone()
    report = refit_complaint_head(model, tokenizer, spec, texts, labels, seed=13)
    assert not torch.equal(before, model.complaint.weight)
    assert report["n"] == 90 and report["l2"] in L2_GRID
    with torch.inference_mode():
        from classifier.refit import pooled_features

        logits = model.complaint(pooled_features(model, tokenizer, spec, texts)).squeeze(-1)
    assert roc_auc(labels, logits.tolist()) > 0.95


def test_model_card_keeps_its_hand_written_tail(tmp_path: Path) -> None:
    from classifier.model import ModelSpec
    from classifier.train import CARD_KEEP, write_model_card

    card = tmp_path / "CARD.md"
    spec = ModelSpec(model_id="m", base={"kind": "dir"}, num_layers=6)
    report = {"complaint": {"n": 4, "auc_urgency": 0.91}, "training": {"complaint_refit": {"n": 9, "l2": 0.1}}}
    write_model_card(card, spec, report, "escucha train --seed 1")
    assert "**0.91**" in card.read_text() and "9 training complaints" in card.read_text()
    card.write_text(card.read_text() + f"\n{CARD_KEEP}\n## Speed\n300 tweets/s\n")
    report["complaint"]["auc_urgency"] = 0.93
    write_model_card(card, spec, report, "escucha train --seed 1")
    text = card.read_text()
    assert "**0.93**" in text and "**0.91**" not in text
    assert text.count(CARD_KEEP) == 1 and text.endswith("## Speed\n300 tweets/s\n")


def test_balanced_weights_equalise_classes_within_each_language() -> None:
    from classifier.refit import balanced_weights

    labels = [0, 0, 0, 1, 2, 0, 1, 1, 2]
    langs = ["en"] * 5 + ["es"] * 4
    w = balanced_weights(labels, langs)
    for lang in ("en", "es"):
        totals = {c: sum(float(w[i]) for i in range(9) if langs[i] == lang and labels[i] == c) for c in (0, 1, 2)}
        assert max(totals.values()) - min(totals.values()) < 1e-9
        assert abs(sum(totals.values()) - langs.count(lang)) < 1e-9  # each language keeps its own weight


def test_softmax_fit_beats_the_majority_class_on_a_skewed_language() -> None:
    from classifier.refit import balanced_weights, choose_l2_softmax, fit_softmax

    g = torch.Generator().manual_seed(3)
    y = torch.tensor([0] * 300 + [1] * 60 + [2] * 40)
    x = torch.randn((400, 6), generator=g) + 50.0
    x[torch.arange(400), y] += 1.2  # weak signal for the rare classes
    langs = ["es"] * 400
    l2, cv = choose_l2_softmax(x, y, langs, seed=1)
    assert l2 in L2_GRID and cv[str(l2)] == max(cv.values())
    w, b = fit_softmax(x, y, l2, balanced_weights(y.tolist(), langs), 3)
    assert w.shape == (3, 6) and b.shape == (3,)
    pred = (x @ w.T + b).argmax(1)
    recalls = [float((pred[y == c] == c).float().mean()) for c in range(3)]
    assert min(recalls) > 0.5  # balanced: the rare classes are not swallowed by class 0
