"""The in-process vector index: every active article's and past answer's embedding in one normalised matrix.

PostgreSQL here has no pgvector (``pg_available_extensions`` lists no ``vector``) and SQLite has none either, so
the search is exact: one matrix product over unit vectors. At a few thousand rows this takes well under a
millisecond, and the index is rebuilt only when the rows it was made from change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session, col

from knowledge.encoder import DIM, from_bytes
from models.knowledge import KbAnswer, KbArticle
from models.tables import Reply


@dataclass(frozen=True, slots=True)
class ArticleRow:
    """What retrieval needs of one language's version of an article."""

    id: int
    slug: str
    language: str
    title: str
    answer: str


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """What retrieval needs of one past approved answer."""

    reply_id: int
    language: str
    text: str
    sent_by: str
    sent_at: datetime | None


@dataclass(slots=True)
class Index:
    """Unit-vector matrices and the rows they stand for, in the same order."""

    articles: list[ArticleRow] = field(default_factory=list)
    article_matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), dtype=np.float32))
    answers: list[AnswerRow] = field(default_factory=list)
    answer_matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), dtype=np.float32))
    # Per language: the answers' row numbers, their matrix rows and reply ids, made on first use for ``rank_answers``.
    # Keyed by language, with the answer count it was made at (a grown list makes it again).
    _by_language: dict[str, tuple[int, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when there is nothing to retrieve."""
        return not self.articles and not self.answers

    def answers_in(self, language: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The past answers in ``language``: row numbers, their unit vectors and reply ids (made once per index)."""
        cached = self._by_language.get(language)
        if cached is None or cached[0] != len(self.answers):
            # Why cached: comparing every answer's language string for every post was most of a lookup's time once
            # the desk had thousands of answers, inside the assignment sweep and its team lock (issue 17).
            rows = np.array([i for i, a in enumerate(self.answers) if a.language == language], dtype=np.int64)
            reply_ids = np.array([self.answers[i].reply_id for i in rows.tolist()], dtype=np.int64)
            cached = (len(self.answers), rows, self.answer_matrix[rows], reply_ids)
            self._by_language[language] = cached
        return cached[1], cached[2], cached[3]

    def version(self, slug: str, language: str) -> ArticleRow | None:
        """The active version of ``slug`` in ``language``, if there is one."""
        for row in self.articles:
            if row.slug == slug and row.language == language:
                return row
        return None


_cache: dict[tuple[object, ...], Index] = {}
_cache_lock = threading.Lock()


def has_entries(session: Session, model_id: str) -> bool:
    """Whether any active article or past answer is embedded by ``model_id`` (reads one row at most, loads nothing)."""
    article = select(col(KbArticle.id)).where(
        col(KbArticle.active).is_(True), col(KbArticle.embedding_model) == model_id
    )
    answer = select(col(KbAnswer.reply_id)).where(col(KbAnswer.embedding_model) == model_id)
    return any(session.execute(q.limit(1)).first() is not None for q in (article, answer))


def _fingerprint(session: Session, model_id: str) -> tuple[object, ...]:
    """Cheap aggregates that change whenever a row the index uses changes."""
    articles = session.execute(
        select(func.count(), func.max(KbArticle.updated_at)).where(
            col(KbArticle.active).is_(True), col(KbArticle.embedding_model) == model_id
        )
    ).one()
    answers = session.execute(
        select(func.count(), func.max(KbAnswer.reply_id)).where(col(KbAnswer.embedding_model) == model_id)
    ).one()
    bind = session.get_bind()
    where = bind.engine.url if hasattr(bind, "engine") else ""
    return (str(where), model_id, *articles, *answers)


def load_index(session: Session, model_id: str) -> Index:
    """The index of active articles and past answers embedded by ``model_id`` (cached until they change)."""
    key = _fingerprint(session, model_id)
    with _cache_lock:
        cached = _cache.get(key)
        previous = next(iter(_cache.items()), None)
    if cached is not None:
        return cached
    index = None
    after = _answers_after(previous[0], key) if previous is not None else None
    if previous is not None and after is not None:
        # Why: every answer sent with approval joins the index, so on a busy desk it changes every few seconds;
        # re-reading every past answer each time grew with the desk's history (thousands of rows per sweep).
        index = _with_new_answers(session, previous[1], model_id, after=after)
        if len(index.answers) != key[-2]:
            index = None  # an answer was removed or re-embedded meanwhile: read everything again
    if index is None:
        index = _read_index(session, model_id)
    with _cache_lock:
        _cache.clear()  # one database and model per process in practice: keep only the newest
        _cache[key] = index
    return index


def _answers_after(old: tuple[object, ...], new: tuple[object, ...]) -> int | None:
    """The highest reply id behind ``old`` when ``new`` differs from it only by answers above it, else None."""
    old_count, old_max, new_count, new_max = old[-2], old[-1], new[-2], new[-1]
    if old[:-2] != new[:-2]:
        return None
    if not (isinstance(old_count, int) and isinstance(old_max, int)):
        return None
    if not (isinstance(new_count, int) and isinstance(new_max, int)):
        return None
    return old_max if new_max > old_max and new_count > old_count else None


def _with_new_answers(session: Session, base: Index, model_id: str, *, after: int) -> Index:
    """A copy of ``base`` with the answers embedded by ``model_id`` whose reply id is above ``after``."""
    index = Index(base.articles, base.article_matrix, list(base.answers), base.answer_matrix)
    rows = _answer_rows(session, model_id, after=after)
    if rows:
        index.answers.extend(row for row, _ in rows)
        index.answer_matrix = np.vstack([base.answer_matrix, *(vector for _, vector in rows)])
    return index


def _answer_rows(session: Session, model_id: str, *, after: int = -1) -> list[tuple[AnswerRow, np.ndarray]]:
    query = (
        select(KbAnswer)
        .join(Reply, col(Reply.id) == col(KbAnswer.reply_id))
        # Not a saved reply sent unchanged (rows stored before the upkeep stopped keeping them): it named another
        # case's agent and promise (knowledge/reuse.py).
        .where(
            col(KbAnswer.embedding_model) == model_id,
            col(KbAnswer.reply_id) > after,
            col(Reply.text) != col(Reply.suggested_text),
        )
        .order_by(col(KbAnswer.reply_id))
    )
    return [
        (AnswerRow(a.reply_id, a.language, a.text, a.sent_by, a.sent_at), from_bytes(a.embedding))
        for a in session.execute(query).scalars()
    ]


def _read_index(session: Session, model_id: str) -> Index:
    """Read every active article and past answer embedded by ``model_id``."""
    index = Index()
    vectors: list[np.ndarray] = []
    query = select(KbArticle).where(col(KbArticle.active).is_(True), col(KbArticle.embedding_model) == model_id)
    for row in session.execute(query.order_by(col(KbArticle.id))).scalars():
        if row.embedding is None or row.id is None:
            continue
        index.articles.append(ArticleRow(row.id, row.slug, row.language, row.title, row.answer))
        vectors.append(from_bytes(row.embedding))
    if vectors:
        index.article_matrix = np.vstack(vectors)
    answers = _answer_rows(session, model_id)
    if answers:
        index.answers = [row for row, _ in answers]
        index.answer_matrix = np.vstack([vector for _, vector in answers])
    return index
