"""`escucha bench classifier`: posts/s of the scorer on real tweets, batch latency, memory, and vs a plain pipeline."""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH_SIZES = (8, 16, 32, 64)
# What the worker hands the scorer in one call (``score_pending``'s limit): the scorer sorts those posts by
# length and runs them in forward passes of ``batch_size``, so the bench calls it the same way.
WORKER_BATCH = 256


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024), 1)


def real_tweets(n: int) -> tuple[list[str], str]:
    """``n`` real tweets and where they came from: XLM-T en + es from ``ESCUCHA_DATA_DIR``, else the shipped seed."""
    from classifier.train import read_tsv
    from ground.settings import get_settings
    from sandbox.seed import bundled_seed_texts

    data_dir = get_settings().data_dir
    texts: list[str] = []
    for name in ("xlmt_en_val.tsv", "xlmt_es_val.tsv", "xlmt_en_train.tsv", "xlmt_es_train.tsv"):
        if data_dir is not None and (data_dir / "sentiment" / name).is_file():
            texts += [r["text"] for r in read_tsv(data_dir / "sentiment" / name)]
    source = "XLM-T en/es tweets"
    if not texts:
        texts, source = [text for _, text in bundled_seed_texts()], "the shipped seed tweets"
    return (texts * (n // len(texts) + 1))[:n], source


def _pipeline_dir(scorer: Any, target: Path) -> Path:
    """The same encoder (fp32) + sentiment head as a plain ``AutoModelForSequenceClassification`` directory."""
    from transformers import AutoModelForSequenceClassification

    from classifier.model import MultiHead, load_model

    encoder: Any = (
        scorer.forward.encoder if isinstance(scorer.forward, MultiHead) else load_model(scorer.source_dir)[0].encoder
    )
    config = encoder.config
    config.num_labels = 3
    clf = AutoModelForSequenceClassification.from_config(config)
    base = getattr(clf, clf.base_model_prefix)
    base.load_state_dict(encoder.state_dict(), strict=False)
    clf.save_pretrained(target)
    scorer.tokenizer.save_pretrained(target)
    return target


def bench_classifier(*, n: int = 1024, pipeline_n: int = 128, model: str | None = None) -> dict[str, Any]:
    import torch
    from transformers import pipeline

    from classifier.base import PostFacts
    from classifier.registry import load_transformer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    scorer: Any = load_transformer(model)
    texts, source = real_tweets(n)
    facts = [PostFacts(text=t) for t in texts]
    scorer.score(facts[:32])  # warm-up
    by_size: dict[int, dict[str, float]] = {}
    for bs in BATCH_SIZES:
        scorer.batch_size = bs
        latencies = []
        t0 = time.perf_counter()
        for start in range(0, len(facts), WORKER_BATCH):
            t = time.perf_counter()
            scorer.score(facts[start : start + WORKER_BATCH])
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - t0
        qs = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else latencies * 19
        by_size[bs] = {
            "posts_per_s": round(len(facts) / elapsed, 1),
            "p50_batch_ms": round(statistics.median(latencies) * 1000, 1),
            "p95_batch_ms": round(qs[18] * 1000, 1),
        }
    best = max(by_size, key=lambda b: by_size[b]["posts_per_s"])
    scorer_peak = peak_rss_mb()  # before the comparison pipeline loads a second copy of the model

    # The same model through a plain transformers pipeline, default settings, same process and texts.
    with tempfile.TemporaryDirectory(prefix="escucha-bench-") as tmp:
        pipe = pipeline("text-classification", model=str(_pipeline_dir(scorer, Path(tmp))), device=-1)
        sample = texts[:pipeline_n]
        pipe(sample[:4])
        t0 = time.perf_counter()
        for text in sample:
            pipe(scorer.spec.prefix + text, truncation=True, max_length=scorer.spec.max_length)
        pipe_rate = len(sample) / (time.perf_counter() - t0)
    ours = by_size[best]["posts_per_s"]
    return {
        "model_id": scorer.model_id,
        "texts": source,
        "n": len(facts),
        "threads": torch.get_num_threads(),
        "backend": getattr(scorer, "backend", "torch"),
        "worker_batch": WORKER_BATCH,
        "best_batch_size": best,
        "posts_per_s": ours,
        "p50_batch_ms": by_size[best]["p50_batch_ms"],
        "p95_batch_ms": by_size[best]["p95_batch_ms"],
        "by_batch_size": {str(k): v for k, v in by_size.items()},
        "pipeline_posts_per_s": round(pipe_rate, 1),
        "vs_pipeline": round(ours / pipe_rate, 2) if pipe_rate else None,
        "peak_rss_mb": scorer_peak,
        "peak_rss_mb_with_pipeline": peak_rss_mb(),
    }
