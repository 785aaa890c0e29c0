"""Heads-only versions: grouped folds, language/class weights, CV search, coupling, feature cache, model-on-model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from classifier import headcv
from classifier.base import PostFacts
from classifier.model import DELTA, ModelSpec
from classifier.pools import CALIB, CALIB_EVERY, FOLDS, PoolTable, fold_of, group_key
from tests.support.tiny_model import WORDS, make_tiny_model


def test_near_duplicates_share_a_fold_and_calibration_is_a_twentieth() -> None:
    assert group_key("@brand THANKS!! http://t.co/x") == group_key("@other thanks https://t.co/y")
    assert fold_of("@brand THANKS!! http://t.co/x  ") == fold_of("thanks")
    folds = [fold_of(f"tweet number {i} about things") for i in range(8000)]
    share = folds.count(CALIB) / len(folds)
    assert abs(share - 1 / CALIB_EVERY) < 0.01
    counts = [folds.count(k) for k in range(FOLDS)]
    assert min(counts) > 0.9 * max(counts)


def _table(n_per: int = 240, seed: int = 0) -> PoolTable:
    """Synthetic pools: the class signal lives in features 0-2; Spanish is skewed to negatives, like TASS."""
    rng = np.random.default_rng(seed)
    rows = []
    for source, lang, probs in (
        ("tass2020_es_train", "es", (0.6, 0.25, 0.15)),
        ("semeval_en_train", "en", (0.2, 0.5, 0.3)),
        ("xlmt_pt_train", "pt", (1 / 3, 1 / 3, 1 / 3)),
    ):
        for _ in range(n_per):
            rows.append((source, lang, int(rng.choice(3, p=probs)), -1))
    for i in range(120):
        rows.append(("complaints_train", "en", -1, int(i % 2 == 0)))
    x = rng.normal(size=(len(rows), 6)).astype(np.float32)
    label = np.asarray([r[2] for r in rows])
    complaint = np.asarray([r[3] for r in rows])
    for i, y in enumerate(label):
        if y >= 0:
            x[i, y] += 1.5
    x[complaint == 1, 1] += 1.5  # complaints look neutral to the sentiment signal...
    x[complaint == 1, 5] += 3.0  # ...but carry a complaint signal of their own
    texts = [f"row {i}" for i in range(len(rows))]
    return PoolTable(
        x=x,
        label=label,
        complaint=complaint,
        lang=np.asarray([r[1] for r in rows]),
        source=np.asarray([r[0] for r in rows]),
        fold=np.asarray([fold_of(t) for t in texts]),
        seen=np.zeros(len(rows), dtype=bool),
        texts=texts,
    )


def test_row_weights_balance_classes_within_a_language_and_follow_the_language_shares() -> None:
    table = _table()
    cfg = headcv.HeadConfig(pools=headcv.ALL_SENTIMENT, lang_weight="es-first", balance=True)
    rows = headcv.training_rows(table, cfg, None)
    w = headcv.row_weights(table, rows, cfg)
    lang, label = table.lang[rows], table.label[rows]
    assert abs(w.sum() - len(rows)) < 1e-6  # same total as unit weights: L2 keeps its meaning
    es_total, en_total, pt_total = (w[lang == code].sum() for code in ("es", "en", "pt"))
    assert abs(es_total / en_total - 2.0) < 1e-6 and abs(pt_total / en_total - 0.25) < 1e-6
    es_by_class = [w[(lang == "es") & (label == c)].sum() for c in range(3)]
    assert max(es_by_class) - min(es_by_class) < 1e-6
    assert not np.isin(rows, np.flatnonzero(table.fold == CALIB)).any()  # calibration rows never trained on


def test_out_of_fold_logits_never_come_from_a_model_that_saw_the_row() -> None:
    table = _table()
    cfg = headcv.HeadConfig(pools=headcv.ALL_SENTIMENT)
    logits, heads = headcv.out_of_fold_logits(table, cfg)
    x = torch.from_numpy(table.x)
    for k, (w, b) in enumerate(heads):
        rows = table.fold == k
        assert np.allclose(logits[rows], (x[rows] @ w.T + b).double().numpy(), atol=1e-5)
        assert not np.isin(np.flatnonzero(rows), headcv.training_rows(table, cfg, k)).any()
    report = headcv.evaluate(table, logits)
    assert report["es_macro_f1"] > 0.6 and report["en_macro_recall"] > 0.6  # the synthetic signal is learnt
    assert len(report["es_by_fold"]) == FOLDS


def test_coupling_raises_complaints_to_negative_and_the_search_keeps_it_within_noise() -> None:
    table = _table()
    p_complaint = np.where(table.complaint == 1, 0.95, 0.05)
    cfg = headcv.HeadConfig(pools=headcv.ALL_SENTIMENT)
    logits, _ = headcv.out_of_fold_logits(table, cfg)
    before = headcv.evaluate(table, logits)
    after = headcv.evaluate(table, headcv.coupled(logits, p_complaint, 4.0))
    assert after["complaints_cv"]["negative_share"] > before["complaints_cv"]["negative_share"] + 0.3
    assert headcv.within_noise(before, after)  # p(complaint) is low on the sentiment pools: nothing lost there
    result = headcv.search(table, p_complaint)
    assert result["alpha"] > 0 or result["chosen"]["complaint_weight"] > 0
    assert result["chosen_report"]["complaints_cv"]["negative_share"] > before["complaints_cv"]["negative_share"]
    name = headcv.HeadConfig(**{**result["chosen"], "pools": tuple(result["chosen"]["pools"])}).name()
    [picked] = [r for r in result["coupling"] if r["config"] == name and r["alpha"] == result["alpha"]]
    assert picked["within_noise"]
    stages = {row["stage"] for row in result["table"]}
    assert {"0 v1 recipe", "1 data mix", "2 language weights", "4 L2"} <= stages


def test_a_killed_search_reuses_the_candidates_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table()
    cfg = headcv.HeadConfig(pools=headcv.ALL_SENTIMENT, l2=0.3)
    first = headcv.run_trial(table, "x", cfg, cache=tmp_path)

    def refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("refitted a cached candidate")

    monkeypatch.setattr(headcv, "out_of_fold_logits", refit)
    again = headcv.run_trial(table, "x", cfg, cache=tmp_path)
    assert again.report == first.report
    table.label[0] = (table.label[0] + 1) % 3  # other pools: the cached logits are not theirs
    with pytest.raises(AssertionError, match="refitted"):
        headcv.run_trial(table, "x", cfg, cache=tmp_path)


def test_within_noise_refuses_a_real_drop() -> None:
    base = {"es_by_fold": [0.70, 0.71, 0.69, 0.70, 0.72], "en_by_fold": [0.7] * 5}
    worse = {"es_by_fold": [0.66, 0.67, 0.66, 0.65, 0.68], "en_by_fold": [0.7] * 5}
    assert not headcv.within_noise(base, worse)
    assert headcv.within_noise(base, dict(base))


def test_feature_extraction_resumes_after_a_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier.features import extract, pool_texts
    from classifier.model import load_model

    pool_file = tmp_path / "pool.tsv"
    lines = [
        f"{['negative', 'neutral', 'positive'][i % 3]}\t{' '.join(WORDS[i % 9 : i % 9 + 4])} {i}" for i in range(23)
    ]
    pool_file.write_text("label\ttext\n" + "\n".join(lines) + "\n")
    model, tokenizer, spec = load_model(make_tiny_model(tmp_path / "tiny"))
    calls: list[int] = []

    def pool(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        calls.append(len(ids))
        return model.pool(ids, mask)

    target = tmp_path / "cache" / "pool.npy"

    def killed(done: int) -> None:
        if len(calls) >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(pool_file, target, tokenizer, spec, pool, chunk=5, progress=killed)
    assert not target.exists() and len(list(target.parent.glob("pool.parts/*.npy"))) == 2
    calls.clear()
    features = extract(pool_file, target, tokenizer, spec, pool, chunk=5)
    assert sum(calls) == 23 - 10  # only the chunks the killed run had not written
    assert features.shape == (23, 32) and target.is_file()
    assert not (target.parent / "pool.parts").exists()
    fresh = extract(pool_file, tmp_path / "other" / "pool.npy", tokenizer, spec, model.pool, chunk=7)
    assert np.allclose(features, fresh, atol=1e-5)  # chunking and resuming do not change a feature
    assert len(pool_texts(pool_file)) == 23


def _parent(root: Path, *, trained: bool = False) -> Path:
    """The tiny model with its heads saved in a delta, so every load sees the same heads."""
    from classifier.model import MultiHead, load_encoder, save_delta

    model_dir = make_tiny_model(root, trained=trained)
    encoder, _, hidden = load_encoder(str(model_dir / "encoder"))
    heads = {f"{h}.{p}" for h in ("sentiment", "complaint", "anger") for p in ("weight", "bias")}
    save_delta(MultiHead(encoder, hidden), model_dir, heads)
    return model_dir


def _child(root: Path, parent: Path, bias: float) -> Path:
    from safetensors.torch import save_file

    ModelSpec(
        model_id="child",
        base={"kind": "model", "path": "../" + parent.name},
        num_layers=None,
        coupling={"negative_from_complaint": 3.0},
    ).write(root)
    head = {"sentiment.weight": torch.zeros((3, 32)), "sentiment.bias": torch.tensor([bias, 0.0, 0.0])}
    save_file({k: v.to(torch.float16) for k, v in head.items()}, str(root / DELTA))
    return root


def test_a_heads_only_version_loads_its_parents_encoder(tmp_path: Path) -> None:
    from classifier.model import lineage, load_model

    parent = _parent(tmp_path / "tiny")
    child = _child(tmp_path / "child", parent, bias=0.5)
    p_model = load_model(parent)[0]
    c_model, _, c_spec = load_model(child)
    for (name, a), (_, b) in zip(
        p_model.encoder.state_dict().items(), c_model.encoder.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert torch.equal(c_model.complaint.weight, p_model.complaint.weight)
    assert torch.allclose(c_model.sentiment.bias, torch.tensor([0.5, 0.0, 0.0]))
    assert lineage(child) == [child, parent.resolve()]
    assert c_spec.coupling == {"negative_from_complaint": 3.0}
    ModelSpec(model_id="loop", base={"kind": "model", "path": "../loop2"}).write(tmp_path / "loop1")
    ModelSpec(model_id="loop", base={"kind": "model", "path": "../loop1"}).write(tmp_path / "loop2")
    with pytest.raises(ValueError, match="loop"):
        load_model(tmp_path / "loop1")


def test_a_heads_only_version_refuses_a_parent_whose_weights_changed(tmp_path: Path) -> None:
    from classifier.model import delta_digest, load_model, save_delta

    parent = _parent(tmp_path / "tiny")
    child = _child(tmp_path / "child", parent, bias=0.5)
    spec = ModelSpec.read(child)
    spec.base["delta_sha256"] = delta_digest(parent)
    spec.write(child)
    load_model(child)  # the parent it was fitted on: fine
    model = load_model(parent)[0]
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight.add_(0.5)  # a full retrain of the encoder
    save_delta(model, parent, {"encoder.embeddings.word_embeddings.weight", "sentiment.bias"})
    with pytest.raises(ValueError, match="heads-only"):
        load_model(child)


def test_the_export_key_follows_the_parents_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier import onnx_backend

    if not onnx_backend.available():
        pytest.skip("onnxruntime/onnx are not installed")
    monkeypatch.setenv("ESCUCHA_MODEL_CACHE", str(tmp_path / "cache"))
    parent = make_tiny_model(tmp_path / "tiny")
    child = _child(tmp_path / "child", parent, bias=0.5)
    before = onnx_backend.cache_key(child)
    spec = ModelSpec.read(parent)
    spec.temperatures = {"sentiment": 2.0, "complaint": 1.0, "anger": 1.0}
    spec.write(parent)
    assert onnx_backend.cache_key(child) != before


def test_the_scorer_applies_the_coupling_before_the_temperature(tmp_path: Path) -> None:
    from classifier.model import load_spec_and_tokenizer
    from classifier.scorer import TransformerScorer

    parent = make_tiny_model(tmp_path / "tiny", trained=True)
    child = _child(tmp_path / "child", parent, bias=0.0)
    spec, tokenizer = load_spec_and_tokenizer(child)
    complaint_logit = {"value": 0.0}

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        n = len(ids)
        return {
            "sentiment": torch.zeros((n, 3)),
            "complaint": torch.full((n,), complaint_logit["value"]),
            "anger": torch.zeros(n),
        }

    scorer = TransformerScorer(forward, tokenizer, spec)
    complaint_logit["value"] = -10.0  # surely not a complaint: sentiment untouched
    [calm] = scorer.score([PostFacts(text="the order")])
    complaint_logit["value"] = 10.0  # surely a complaint: negative gets +3 on its logit
    [angry] = scorer.score([PostFacts(text="the order")])
    assert abs(calm.probabilities["negative"] - 1 / 3) < 0.01
    expected = float(torch.softmax(torch.tensor([3.0, 0.0, 0.0]), 0)[0])
    assert abs(angry.probabilities["negative"] - expected) < 0.01 and angry.sentiment == "negative"
