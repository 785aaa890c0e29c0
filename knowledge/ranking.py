"""Ranking by meaning plus what staff did with earlier suggestions, and when a match is confident enough to answer.

The score of an article is its cosine similarity to the post (best over its language versions, so a Spanish
post finds an article written only in English) plus a small prior learnt from feedback: suggestions of it that
staff sent as they were push it up, ones they discarded push it down. The prior is shrunk towards zero until an
article has a few outcomes, so one click never buries an article.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session, col

from knowledge.index import AnswerRow, ArticleRow, Index
from models.knowledge import KbArticle, KbSuggestion

ACCEPTED = "accepted"
EDITED = "edited"
DISCARDED = "discarded"
OUTCOMES = (ACCEPTED, EDITED, DISCARDED)

# How far feedback may move an article, on the cosine scale (e5's cosines between related texts sit in
# 0.8-0.95, so 0.03 is enough to swap near ties but not to beat a clearly better match).
PRIOR_WEIGHT = 0.03
PRIOR_PSEUDO_COUNT = 4.0
EDIT_CREDIT = 0.5  # an edited suggestion was useful, but less than one sent as it was

# A match is confident when its score reaches this: the threshold `escucha evaluate-answers` chose by 5-fold
# cross-validation (F0.5) on the training part of knowledge/eval/support_eval.tsv, never on its test part.
CONFIDENT_ARTICLE = 0.915
# A past answer is reused only when the post is nearly the same question in the same language.
CONFIDENT_ANSWER = 0.93


@dataclass(frozen=True, slots=True)
class ArticleHit:
    """An article found for a post: the version matched, its similarity and its score after the prior."""

    article: ArticleRow
    similarity: float
    score: float


@dataclass(frozen=True, slots=True)
class AnswerHit:
    """A past approved answer found for a post."""

    answer: AnswerRow
    similarity: float


def prior(accepted: int, edited: int, discarded: int) -> float:
    """The feedback prior of one article: in [-PRIOR_WEIGHT, PRIOR_WEIGHT], zero without outcomes."""
    total = accepted + edited + discarded
    signed = accepted + EDIT_CREDIT * edited - discarded
    return PRIOR_WEIGHT * signed / (total + PRIOR_PSEUDO_COUNT)


def load_priors(session: Session) -> dict[str, float]:
    """Each article slug's prior, from the outcomes of the suggestions made from any of its versions."""
    rows = session.execute(
        select(col(KbArticle.slug), col(KbSuggestion.outcome), func.count())
        .join(KbArticle, col(KbArticle.id) == col(KbSuggestion.article_id))
        .where(col(KbSuggestion.outcome).is_not(None))
        .group_by(col(KbArticle.slug), col(KbSuggestion.outcome))
    ).all()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for slug, outcome, n in rows:
        if outcome in OUTCOMES:
            counts[slug][outcome] += int(n)
    return {slug: prior(c[ACCEPTED], c[EDITED], c[DISCARDED]) for slug, c in counts.items()}


def rank_articles(index: Index, query: np.ndarray, priors: dict[str, float], *, k: int = 3) -> list[ArticleHit]:
    """The ``k`` best articles for one unit query vector, one hit per slug, best first."""
    if not index.articles:
        return []
    sims = index.article_matrix @ query
    best: dict[str, ArticleHit] = {}
    for row, sim in zip(index.articles, sims.tolist(), strict=True):
        score = sim + priors.get(row.slug, 0.0)
        if row.slug not in best or score > best[row.slug].score:
            best[row.slug] = ArticleHit(row, sim, score)
    return sorted(best.values(), key=lambda h: (-h.score, h.article.id))[:k]


def rank_answers(index: Index, query: np.ndarray, *, language: str, k: int = 3) -> list[AnswerHit]:
    """The ``k`` past answers in ``language`` whose posts were most like this one, best first."""
    if not index.answers:
        return []
    # Why arrays: every approved answer joins the index, so a Python object per answer per post made each lookup
    # grow with the desk's history (8,000 answers after 5 minutes of a 50 posts/s bench: milliseconds per post).
    rows, matrix, reply_ids = index.answers_in(language)
    if not rows.size:
        return []
    sims = matrix @ query
    # Best first; equal similarities: the newest answer first (lexsort's last key is the primary one).
    best = np.lexsort((-reply_ids, -sims))[:k]
    return [AnswerHit(index.answers[int(rows[i])], float(sims[i])) for i in best]
