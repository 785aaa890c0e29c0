"""The transformer scorer: local loading with no network, edge cases, crisis lane, calibration, fallback."""

from __future__ import annotations

import json
import logging
import math
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classifier.base import SENTIMENTS, PostFacts
from classifier.e5_weights import dequantise_q4
from classifier.metrics import roc_auc, sentiment_metrics
from classifier.model import ModelSpec
from classifier.train import fit_temperature
from tests.support.tiny_model import make_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny_scorer(tiny_dir: Path):
    from classifier.scorer import TransformerScorer

    return TransformerScorer.from_dir(tiny_dir)


def test_dequantise_q4_block() -> None:
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    nibbles = np.array([(j % 16) | ((15 - j % 16) << 4) for j in range(16)], dtype=np.uint8)
    out = dequantise_q4(np.concatenate([scale, nibbles]), 1, 32)[0]
    assert out[0] == (0 - 8) * 0.5 and out[15] == (15 - 8) * 0.5
    assert out[16] == (15 - 8) * 0.5 and out[31] == (0 - 8) * 0.5


def test_loads_from_local_dir_without_network(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier.scorer import TransformerScorer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ESCUCHA_ALLOW_HUB", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    scorer = TransformerScorer.from_dir(tiny_dir)
    [s] = scorer.score([PostFacts(text="the order never arrived")])
    assert s.model_id == "tiny-test (untrained heads)"
    assert "untrained model heads: scores are not meaningful" in s.reasons


def test_hub_base_refused_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier.model import load_model

    monkeypatch.delenv("ESCUCHA_ALLOW_HUB", raising=False)
    ModelSpec(model_id="x", base={"kind": "hub", "id": "intfloat/multilingual-e5-small"}).write(tmp_path)
    with pytest.raises(FileNotFoundError, match="ESCUCHA_ALLOW_HUB"):
        load_model(tmp_path)


EDGE_CASES = [
    "",
    "   ",
    "😡😡😡🔥",
    "x" * 10_000,
    ("my order never arrived " * 800),
    "Hola @soporte, my package is late y nadie me responde 😤 https://t.co/abc123",
    "@user @brand_es http://example.com #fail",
    "\x00\u200b\ufeff",
]


@pytest.mark.parametrize("text", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases(tiny_scorer, text: str) -> None:
    [s] = tiny_scorer.score([PostFacts(text=text)])
    assert s.sentiment in SENTIMENTS
    assert math.isclose(sum(s.probabilities.values()), 1.0, abs_tol=1e-5)
    assert 0.0 <= s.complaint <= 1.0 and 0 <= s.urgency <= 100
    assert s.language in ("es", "en", "other")
    json.dumps(s.reasons)


def test_batch_keeps_order_and_matches_single(tiny_dir: Path) -> None:
    from classifier.scorer import TransformerScorer

    # PyTorch fp32: exact. (int8's dynamic activation scales depend on batch-mates; see test_classifier_onnx.)
    scorer = TransformerScorer.from_dir(tiny_dir, backend="torch")
    texts = ["gracias genial", "awful " * 50, "help", "el pedido nunca llegó", ""]
    batch = scorer.score([PostFacts(text=t) for t in texts])
    for text, s in zip(texts, batch, strict=True):
        [one] = scorer.score([PostFacts(text=text)])
        for k in SENTIMENTS:
            assert one.probabilities[k] == pytest.approx(s.probabilities[k], abs=1e-4)


def test_long_text_reason(tiny_scorer) -> None:
    [s] = tiny_scorer.score([PostFacts(text="a" * 10_000)])
    assert any(r.startswith("long text") for r in s.reasons)


CRISIS = [
    ("I'll sue you if this is not fixed", "legal threat"),
    ("Los voy a demandar, ya hablé con mi abogado", "legal threat"),
    ("I want to die, nothing works", "self-harm"),
    ("me quiero morir con este servicio", "self-harm"),
    ("my account was hacked and my data leaked", "data breach"),
    ("me robaron la cuenta, hackearon todo", "data breach"),
    ("the whole city is without internet, massive outage", "mass outage"),
    ("toda la ciudad sin luz, apagón general", "mass outage"),
    ("gas leak next to your store, explosion risk", "safety threat"),
    ("amenaza de bomba en la sucursal", "safety threat"),
    ("me intoxiqué… mi hijo está en urgencias", "health risk"),
    ("voy a denunciaros, me habéis cobrado dos veces", "legal threat"),
]


@pytest.mark.parametrize(("text", "label"), CRISIS)
def test_crisis_lane_both_languages(tiny_scorer, text: str, label: str) -> None:
    [s] = tiny_scorer.score([PostFacts(text=text)])
    assert s.crisis and s.needs_response
    assert s.urgency >= 80
    assert f"crisis: {label}" in s.reasons


def test_ordinary_negativity_is_not_crisis(tiny_scorer) -> None:
    [s] = tiny_scorer.score([PostFacts(text="this update is awful and slow, really disappointed")])
    assert not s.crisis
    assert not any(r.startswith("crisis") for r in s.reasons)


def test_facts_raise_urgency_with_reasons(tiny_scorer) -> None:
    plain, rich = tiny_scorer.score(
        [
            PostFacts(text="help"),
            PostFacts(text="help", is_dm=True, followers_count=38_000, waiting_s=5 * 3600),
        ]
    )
    assert rich.urgency > plain.urgency
    assert "DM" in rich.reasons and "author reach 38k" in rich.reasons
    assert any(r.startswith("waiting 5.0 h") for r in rich.reasons)


def test_temperature_fit_reduces_nll_on_held_out() -> None:
    gen = torch.Generator().manual_seed(0)
    n = 2000
    labels = torch.randint(0, 3, (n,), generator=gen)
    clean = torch.randn(n, 3, generator=gen)
    clean[torch.arange(n), labels] += 1.0
    overconfident = clean * 4.0  # the kind of logits a fine-tuned model gives
    fit, held = slice(0, 1000), slice(1000, n)
    t = fit_temperature(overconfident[fit], labels[fit], binary=False)
    assert t > 1.5

    def nll(scale: float) -> float:
        return float(torch.nn.functional.cross_entropy(overconfident[held] / scale, labels[held]))

    assert nll(t) < nll(1.0)
    probs = torch.softmax(overconfident[held] / t, dim=-1)
    assert torch.allclose(probs.sum(-1), torch.ones(n - 1000))

    blabels = (torch.rand(n, generator=gen) < 0.5).long()
    blogits = (blabels * 2 - 1) * 0.5 * 6 + torch.randn(n, generator=gen) * 6
    bt = fit_temperature(blogits[fit], blabels[fit], binary=True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert bce(blogits[held] / bt, blabels[held].float()) < bce(blogits[held], blabels[held].float())


def test_metrics() -> None:
    gold = ["negative", "neutral", "positive", "positive"]
    pred = ["negative", "positive", "positive", "neutral"]
    m = sentiment_metrics(gold, pred)
    assert m["n"] == 4 and m["accuracy"] == 0.5
    assert m["per_class"]["positive"]["recall"] == 0.5
    assert m["macro_recall"] == pytest.approx((1 + 0 + 0.5) / 3, abs=1e-3)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_load_scorer_falls_back_with_reason(monkeypatch: pytest.MonkeyPatch, caplog, tmp_path: Path) -> None:
    from classifier.lexicon_scorer import LexiconScorer
    from classifier.registry import load_scorer

    monkeypatch.setenv("ESCUCHA_MODEL", str(tmp_path / "missing"))
    with caplog.at_level(logging.WARNING, logger="classifier.registry"):
        scorer = load_scorer()
    assert isinstance(scorer, LexiconScorer)
    assert "did not load" in caplog.text


def test_load_scorer_uses_escucha_model_dir(monkeypatch: pytest.MonkeyPatch, tiny_dir: Path) -> None:
    from classifier.registry import load_scorer

    monkeypatch.setenv("ESCUCHA_MODEL", str(tiny_dir))
    assert load_scorer().model_id.startswith("tiny-test")
    monkeypatch.setenv("ESCUCHA_SCORER", "lexicon")
    assert load_scorer().model_id.startswith("lexicon")


def test_staff_corrections_become_training_labels(engine: Any) -> None:
    """Corrections made through the review app's function are read back as labels; the latest one wins."""
    from sqlmodel import Session

    from classifier.feedback import load_examples
    from responder.corrections import correct_post
    from tests.support.factories import scored_post, staff

    with Session(engine, expire_on_commit=False) as session:
        boss = staff(session, "Boss", role="manager")
        angry = scored_post(session, text="gracias por nada", sentiment="neutral")
        chatter = scored_post(session, text="nice pic", sentiment="positive")
        correct_post(session, post_id=angry.id, staff=boss, sentiment="positive")  # type: ignore[arg-type]
        correct_post(session, post_id=angry.id, staff=boss, sentiment="negative", urgency=70)  # type: ignore[arg-type]
        correct_post(session, post_id=chatter.id, staff=boss, needs_response=False)  # type: ignore[arg-type]
        session.commit()
    assert sorted(load_examples(engine)) == [
        ("gracias por nada", "complaint", 1),
        ("gracias por nada", "sentiment", 0),
        ("nice pic", "complaint", 0),
    ]
