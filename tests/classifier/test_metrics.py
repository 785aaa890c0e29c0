"""Bootstrap intervals of the sentiment figures: they bracket the figure and shrink with more data."""

from __future__ import annotations

import random

from classifier.metrics import bootstrap_interval, sentiment_metrics

LABELS = ("negative", "neutral", "positive")


def _predictions(n: int, accuracy: float, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    gold = [LABELS[i % 3] for i in range(n)]
    pred = [g if rng.random() < accuracy else LABELS[(LABELS.index(g) + 1) % 3] for g in gold]
    return gold, pred


def test_interval_brackets_the_figure_and_narrows_with_more_data() -> None:
    gold, pred = _predictions(324, 0.7, 1)
    small = bootstrap_interval(gold, pred, resamples=300)
    figure = sentiment_metrics(gold, pred)
    assert small["macro_f1"][0] < figure["macro_f1"] < small["macro_f1"][1]
    assert small["macro_recall"][0] < figure["macro_recall"] < small["macro_recall"][1]
    gold, pred = _predictions(3240, 0.7, 1)
    large = bootstrap_interval(gold, pred, resamples=300)
    assert large["macro_f1"][1] - large["macro_f1"][0] < 0.6 * (small["macro_f1"][1] - small["macro_f1"][0])
    assert bootstrap_interval(gold, pred, resamples=50) == bootstrap_interval(gold, pred, resamples=50)  # seeded
