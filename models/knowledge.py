"""Knowledge-base tables: articles and canned answers, the suggestions made from them, and past answers' embeddings.

Embeddings are stored with their row as little-endian float32 bytes, L2-normalised, with the encoder that made
them: PostgreSQL here has no pgvector, so search is an exact dot product in process (``knowledge/index.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.tables import utcnow

ARTICLE = "article"
CANNED = "canned"


class KbArticle(SQLModel, table=True):
    """One language's version of an article or canned answer; versions of one article share a ``slug``."""

    __tablename__ = "kb_article"
    __table_args__ = (UniqueConstraint("slug", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, index=True)
    language: str = Field(max_length=8)
    kind: str = Field(default=ARTICLE, max_length=16)
    title: str = Field(max_length=255)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    # What goes into a reply when this article answers a post (the body is for staff to read).
    answer: str = Field(default="", sa_column=Column(Text, nullable=False))
    # Ways customers ask for it, one a line: the embedding is their centroid with the title's, which matches
    # short social posts far better than the article's prose does.
    questions: str = Field(default="", sa_column=Column(Text, nullable=False))
    active: bool = True
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    embedding_model: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = Field(default="", max_length=64)


class KbSuggestion(SQLModel, table=True):
    """A suggested reply that carried an answer from the knowledge base, and what staff did with it."""

    __tablename__ = "kb_suggestion"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    article_id: int | None = Field(default=None, foreign_key="kb_article.id", index=True)
    answer_reply_id: int | None = Field(default=None, foreign_key="reply.id")
    score: float = 0.0
    language: str = Field(default="", max_length=8)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # accepted (sent as suggested), edited (sent changed), discarded (rejected, dismissed, replaced); None: open.
    outcome: str | None = Field(default=None, max_length=16, index=True)
    outcome_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class KbAnswer(SQLModel, table=True):
    """A sent answer staff approved, with the embedding of the post it answered, for "similar past answers"."""

    __tablename__ = "kb_answer"

    reply_id: int = Field(foreign_key="reply.id", primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    language: str = Field(default="", max_length=8)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    sent_by: str = Field(default="", max_length=255)
    sent_at: datetime | None = None
    embedding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    embedding_model: str = Field(max_length=128)


class KbQueryVector(SQLModel, table=True):
    """A post's knowledge-lookup embedding (e5 ``query:``), made once in the scoring batch and read by every sweep.

    Why a table: the assignment sweep, the SLA sweep's new drafts and the upkeep of past answers all need the same
    vector, in whichever worker runs them; made once here, none of them runs the twelve-layer encoder again.
    """

    __tablename__ = "kb_query_vector"

    post_id: int = Field(foreign_key="post.id", primary_key=True)
    model_id: str = Field(max_length=128)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    made_at: datetime = Field(default_factory=utcnow)
