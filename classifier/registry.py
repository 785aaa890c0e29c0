"""Which scorer the worker runs with."""

from __future__ import annotations

from classifier.base import Scorer


def load_scorer() -> Scorer:
    """Return the scorer the product runs with (the lexicon baseline until the transformer lands)."""
    from classifier.baseline import LexiconScorer

    return LexiconScorer()
