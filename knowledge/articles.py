"""Adding, editing and retiring knowledge-base articles; each save embeds the article again."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from knowledge.encoder import Encoder, default_encoder, normalise, to_bytes
from models.knowledge import ARTICLE, CANNED, KbArticle
from models.tables import utcnow

LANGUAGES = ("es", "en")
KINDS = (ARTICLE, CANNED)
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
TITLE_LIMIT = 255
# An answer goes into a reply: X's 280 weighted characters are the tightest channel it may have to fit.
ANSWER_LIMIT = 600
BODY_LIMIT = 20_000
QUESTIONS_LIMIT = 50


class ArticleError(ValueError):
    """An article that cannot be saved as written; the message names the field."""


@dataclass(slots=True)
class ArticleDraft:
    """What a person (or an import file) gives for one language's version of an article."""

    slug: str
    language: str
    title: str
    answer: str
    body: str = ""
    questions: list[str] = field(default_factory=list)
    kind: str = ARTICLE


def clean(draft: ArticleDraft) -> ArticleDraft:
    """Return ``draft`` trimmed and checked, or raise ``ArticleError`` naming what is wrong."""
    slug = draft.slug.strip().lower()
    if not SLUG.match(slug):
        raise ArticleError(f"slug {draft.slug!r}: use 1-64 lowercase letters, digits and dashes")
    language = draft.language.strip().lower()
    if language not in LANGUAGES:
        raise ArticleError(f"language {draft.language!r}: must be one of {', '.join(LANGUAGES)}")
    kind = draft.kind.strip().lower() or ARTICLE
    if kind not in KINDS:
        raise ArticleError(f"kind {draft.kind!r}: must be one of {', '.join(KINDS)}")
    title = " ".join(draft.title.split())
    if not title:
        raise ArticleError("title: empty")
    if len(title) > TITLE_LIMIT:
        raise ArticleError(f"title: {len(title)} characters, at most {TITLE_LIMIT}")
    answer = draft.answer.strip()
    if not answer:
        raise ArticleError("answer: empty (it is what a reply says)")
    if len(answer) > ANSWER_LIMIT:
        raise ArticleError(f"answer: {len(answer)} characters, at most {ANSWER_LIMIT}")
    body = draft.body.strip()
    if len(body) > BODY_LIMIT:
        raise ArticleError(f"body: {len(body)} characters, at most {BODY_LIMIT}")
    questions = [" ".join(q.split()) for q in draft.questions if q.strip()]
    if len(questions) > QUESTIONS_LIMIT:
        raise ArticleError(f"questions: {len(questions)}, at most {QUESTIONS_LIMIT}")
    return ArticleDraft(slug, language, title, answer, body, questions, kind)


def embedding_texts(title: str, questions: list[str], body: str) -> list[str]:
    """The texts whose centroid stands for the article: its title and the questions it answers (else its body)."""
    texts = [title, *questions]
    if not questions and body:
        texts.append(body[:1000])
    return texts


def embed_article(title: str, questions: list[str], body: str, encoder: Encoder) -> np.ndarray:
    """One unit vector for an article: the centroid of its title's and questions' query embeddings."""
    vectors = encoder.queries(embedding_texts(title, questions, body))
    return normalise(vectors.mean(axis=0, keepdims=True))[0]


def save_article(session: Session, draft: ArticleDraft, *, actor: str, encoder: Encoder | None = None) -> KbArticle:
    """Add or replace the version of ``draft.slug`` in ``draft.language`` (active again); the caller commits."""
    draft = clean(draft)
    encoder = encoder or default_encoder()
    row = session.execute(
        select(KbArticle).where(col(KbArticle.slug) == draft.slug, col(KbArticle.language) == draft.language)
    ).scalar_one_or_none()
    now = utcnow()
    if row is None:
        row = KbArticle(slug=draft.slug, language=draft.language, created_at=now, title=draft.title)
    row.kind = draft.kind
    row.title = draft.title
    row.body = draft.body
    row.answer = draft.answer
    row.questions = "\n".join(draft.questions)
    row.active = True
    row.embedding = to_bytes(embed_article(draft.title, draft.questions, draft.body, encoder))
    row.embedding_model = encoder.model_id
    row.updated_at = now
    row.updated_by = actor[:64]
    session.add(row)
    session.flush()
    return row


def set_active(session: Session, *, article_id: int, active: bool, actor: str) -> KbArticle:
    """Retire an article (it stops being suggested, its history stays) or bring it back; the caller commits."""
    row = session.get(KbArticle, article_id)
    if row is None:
        raise LookupError(f"article {article_id} does not exist")
    row.active = active
    row.updated_at = utcnow()
    row.updated_by = actor[:64]
    session.add(row)
    return row


def list_articles(session: Session, *, include_retired: bool = True) -> list[KbArticle]:
    """Every article version, by slug then language."""
    query = select(KbArticle).order_by(col(KbArticle.slug), col(KbArticle.language))
    if not include_retired:
        query = query.where(col(KbArticle.active).is_(True))
    return list(session.execute(query).scalars())
