"""The TF-IDF baseline that retrieval by meaning must beat: word unigrams and bigrams, accents folded, cosine."""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lowercased, accent-folded words and adjacent word pairs."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = _WORD.findall(folded)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


class TfidfIndex:
    """Documents as sublinear-tf, smoothed-idf unit vectors over their own vocabulary."""

    def __init__(self, documents: Sequence[str]) -> None:
        counts = [Counter(tokens(d)) for d in documents]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        self.vocabulary = {term: i for i, term in enumerate(sorted(df))}
        n = len(documents)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in sorted(df)], dtype=np.float64)
        self.matrix = np.vstack([self._vector(c) for c in counts]) if counts else np.zeros((0, 0))

    def _vector(self, count: Counter[str]) -> np.ndarray:
        vector = np.zeros(len(self.vocabulary), dtype=np.float64)
        for term, n in count.items():
            i = self.vocabulary.get(term)
            if i is not None:
                vector[i] = (1.0 + math.log(n)) * self.idf[i]
        norm = np.linalg.norm(vector)
        return vector / norm if norm > 0 else vector

    def scores(self, query: str) -> np.ndarray:
        """Cosine of ``query`` with every document (zeros when no word is shared)."""
        return self.matrix @ self._vector(Counter(tokens(query)))
