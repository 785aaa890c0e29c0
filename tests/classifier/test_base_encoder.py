"""The base e5 encoder behind retrieval and themes: the int8 export agrees with fp32 and keeps e5's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.base_encoder import BASE_ID, base_encoder

TEXTS = [
    "query: mi pedido no ha llegado y nadie me contesta",
    "query: my parcel never arrived and nobody answers",
    "query: ¿a qué hora abren las tiendas el domingo?",
    "query: what time does the shop open on Sunday?",
    "query: me cobrasteis dos veces, quiero el reembolso",
]


@pytest.fixture(scope="module")
def both() -> tuple[np.ndarray, np.ndarray]:
    """The same texts through the int8 export and the fp32 weights."""
    return base_encoder("onnx").embed(TEXTS, max_length=256), base_encoder("torch").embed(TEXTS, max_length=256)


def test_int8_vectors_agree_with_fp32(both: tuple[np.ndarray, np.ndarray]) -> None:
    int8, fp32 = both
    assert int8.shape == fp32.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    # Per-channel int8 weights: vectors within about a hundredth of fp32, and so is every similarity.
    cosines = (int8 * fp32).sum(axis=1)
    assert float(cosines.min()) > 0.98 and float(cosines.mean()) > 0.99
    assert float(np.abs(int8 @ int8.T - fp32 @ fp32.T).max()) < 0.02


def test_translations_sit_closer_than_other_topics(both: tuple[np.ndarray, np.ndarray]) -> None:
    int8, _ = both
    sims = int8 @ int8.T
    # The Spanish and English parcel complaints are nearer each other than either is to the opening-hours question.
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 3]
    assert sims[2, 3] > sims[2, 4]


def test_model_ids_name_the_backend() -> None:
    assert base_encoder("onnx").model_id == f"{BASE_ID}/onnx-int8pc"
    assert base_encoder("torch").model_id == f"{BASE_ID}/fp32"
    assert base_encoder() is base_encoder()
    assert base_encoder("torch") is not base_encoder("onnx")


def test_empty_input_gives_no_rows() -> None:
    assert base_encoder("onnx").embed([], max_length=64).shape == (0, 384)
