"""The knowledge base's answer to a post, for the suggested reply: the hook ``responder/drafts.py`` calls.

For a post that needs an answer, the best articles and the most similar past approved answers are found by
meaning. When the best is confident, its answer in the customer's language goes into the suggestion and the
suggestion is recorded (``kb_suggestion``) so staff see its source and what they do with it trains the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from knowledge.encoder import Encoder, default_encoder, model_id
from knowledge.index import Index, load_index
from knowledge.query_vectors import ANSWERABLE, stored
from knowledge.ranking import (
    CONFIDENT_ANSWER,
    CONFIDENT_ARTICLE,
    AnswerHit,
    ArticleHit,
    load_priors,
    rank_answers,
    rank_articles,
)
from knowledge.reuse import reusable_text
from models.knowledge import KbSuggestion
from models.tables import utcnow

# Types of post a fact from the manuals can answer; praise and crises get people, not articles.
ANSWERED_TYPES = frozenset({"question", "complaint", "other"})


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What the knowledge base holds for one post."""

    articles: list[ArticleHit] = field(default_factory=list)
    answers: list[AnswerHit] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class KbAnswer:
    """A confident answer for a post: the text for the reply and where it came from."""

    text: str
    score: float
    article_id: int | None = None
    answer_reply_id: int | None = None


def choose(retrieval: Retrieval, *, language: str, index: Index) -> KbAnswer | None:
    """The answer to put in the suggestion, in ``language``: a confident article first, else a past answer."""
    if language not in ANSWERABLE:
        return None
    if retrieval.articles and retrieval.articles[0].score >= CONFIDENT_ARTICLE:
        best = retrieval.articles[0]
        version = index.version(best.article.slug, language)
        if version is not None and version.answer.strip():
            return KbAnswer(text=version.answer.strip(), score=best.score, article_id=version.id)
    if retrieval.answers and retrieval.answers[0].similarity >= CONFIDENT_ANSWER:
        hit = retrieval.answers[0]
        # reusable_text again: rows stored before it existed still carry their customer's greeting.
        text = reusable_text(hit.answer.text, signer=hit.answer.sent_by)
        if text:
            return KbAnswer(text=text, score=hit.similarity, answer_reply_id=hit.answer.reply_id)
    return None


class Knowledge:
    """The knowledge base as one sweep sees it; ``answer`` records what it suggests in the sweep's session."""

    def __init__(
        self, session: Session, index: Index, priors: dict[str, float], encoder: Encoder | None, *, model: str = ""
    ) -> None:
        self._session = session
        self.index = index
        self.priors = priors
        self._encoder = encoder
        self.model_id = model or (encoder.model_id if encoder is not None else model_id())
        # Query vectors by post id, made when the posts were scored (knowledge/query_vectors.py).
        self.known: dict[int, np.ndarray] = {}
        self._absent: set[int] = set()  # posts looked up with no stored vector: not asked again

    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded on first use: a sweep with nothing to answer never loads it."""
        if self._encoder is None:
            self._encoder = default_encoder()
        return self._encoder

    def prefetch(self, posts: list[tuple[str, str]]) -> None:
        """Embed the (text, language) posts a sweep is about to answer, in one batched call, so ``find`` is cheap."""
        texts = [text for text, language in posts if language in ANSWERABLE and text.strip()]
        if texts and not self.index.empty:
            self.encoder.queries(texts)

    def load_vectors(self, post_ids: Sequence[int]) -> None:
        """Read the stored query vectors of ``post_ids`` in one query, so ``answer`` embeds none of them."""
        missing = [i for i in post_ids if i not in self.known and i not in self._absent]
        if missing and not self.index.empty:
            self.known.update(stored(self._session, missing, self.model_id))
            self._absent.update(i for i in missing if i not in self.known)

    def find(self, text: str, *, language: str, k: int = 3, post_id: int | None = None) -> Retrieval:
        """The best articles (any language) and past answers (in ``language``) for ``text`` (post ``post_id``)."""
        if self.index.empty or not text.strip():
            return Retrieval()
        if post_id is not None:
            self.load_vectors([post_id])
        query = self.known[post_id] if post_id in self.known else self.encoder.queries([text])[0]
        return Retrieval(
            articles=rank_articles(self.index, query, self.priors, k=k),
            answers=rank_answers(self.index, query, language=language, k=k),
        )

    def answer(self, *, post_id: int | None, text: str, language: str, reply_type: str) -> str | None:
        """The answer text for a suggested reply to this post, or None; a confident one is recorded."""
        if post_id is None or reply_type not in ANSWERED_TYPES or language not in ANSWERABLE:
            return None
        found = choose(self.find(text, language=language, post_id=post_id), language=language, index=self.index)
        if found is None:
            return None
        self._session.add(
            KbSuggestion(
                post_id=post_id,
                article_id=found.article_id,
                answer_reply_id=found.answer_reply_id,
                score=round(found.score, 4),
                language=language,
                text=found.text,
                created_at=utcnow(),
            )
        )
        return found.text


def load_knowledge(session: Session, *, encoder: Encoder | None = None) -> Knowledge | None:
    """The knowledge base for a sweep, or None when it holds nothing (then no model is ever loaded)."""
    model = encoder.model_id if encoder is not None else model_id()
    index = load_index(session, model)
    if index.empty:
        return None
    return Knowledge(session, index, load_priors(session), encoder, model=model)


def suggestion_for(session: Session, *, post_id: int, suggested_text: str) -> KbSuggestion | None:
    """The knowledge-base suggestion behind a post's suggested reply, if it carried one (newest first)."""
    rows = session.execute(
        select(KbSuggestion).where(col(KbSuggestion.post_id) == post_id).order_by(col(KbSuggestion.id).desc())
    ).scalars()
    for row in rows:
        if row.text and row.text[:60] in suggested_text:
            return row
    return None


def knowledge_template(
    knowledge: Knowledge, *, post_id: int | None, text: str, language: str, reply_type: str
) -> str | None:
    """A saved-reply template that answers the post from the knowledge base, or None when nothing is confident."""
    found = knowledge.answer(post_id=post_id, text=text, language=language, reply_type=reply_type)
    if found is None:
        return None
    # The answer is text, never a template: braces an editor typed must come out as written.
    literal = found.replace("{", "{{").replace("}", "}}")
    return "{greet}" + literal + " — {agent}"
