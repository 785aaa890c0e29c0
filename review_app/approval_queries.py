"""The reads behind "Waiting for approval" and "My submissions": paged in SQL, never over every row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from models.tables import Author, Post, Reply, ReplyKind, ReplyState, Staff

# Replies a person submitted and what became of them (a suggestion approved as it was is nobody's submission).
SUBMISSION_STATES = (
    ReplyState.PENDING_APPROVAL,
    ReplyState.REJECTED,
    ReplyState.APPROVED,
    ReplyState.SENDING,
    ReplyState.SENT,
    ReplyState.FAILED,
)


@dataclass(frozen=True, slots=True)
class ApprovalItem:
    """One submitted answer as a manager decides on it."""

    reply_id: int
    post_id: int
    network: str
    kind: str
    author_name: str  # who wrote the answer
    submitted_at: datetime | None
    text: str
    suggested_text: str
    customer_username: str
    customer_text: str
    urgency: int | None
    due_at: datetime | None
    flag: str | None


@dataclass(frozen=True, slots=True)
class Submission:
    """One of a person's submitted answers and what became of it."""

    reply_id: int
    post_id: int
    state: str
    text: str
    note: str | None
    submitted_at: datetime | None
    updated_at: datetime
    customer_text: str


def _pending() -> tuple[Any, ...]:
    return (col(Reply.kind) == ReplyKind.ANSWER, col(Reply.state) == ReplyState.PENDING_APPROVAL)


def count_waiting(session: Session) -> int:
    """How many submitted answers wait for a manager."""
    return int(session.execute(select(func.count()).select_from(Reply).where(*_pending())).scalar_one())


def waiting_for_approval(session: Session, *, limit: int = 25, offset: int = 0) -> list[ApprovalItem]:
    """Submitted answers waiting for a manager: most urgent first, then the longest waiting."""
    writer = aliased(Staff)
    rows = session.execute(
        select(Reply, Post, col(writer.name), col(Author.username))
        .join(Post, col(Post.id) == col(Reply.post_id))
        .outerjoin(writer, col(writer.id) == col(Reply.submitted_by_id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(*_pending())
        .order_by(col(Post.urgency).desc().nulls_last(), col(Reply.submitted_at).asc(), col(Reply.id).asc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        ApprovalItem(
            reply_id=reply.id,
            post_id=post.id,
            network=post.network,
            kind=post.kind,
            author_name=name or "",
            submitted_at=reply.submitted_at,
            text=reply.text,
            suggested_text=reply.suggested_text,
            customer_username=username or "",
            customer_text=post.text,
            urgency=post.urgency,
            due_at=post.due_at,
            flag=reply.flag,
        )
        for reply, post, name, username in rows
    ]


def my_submissions(session: Session, *, staff_id: int, limit: int = 50) -> list[Submission]:
    """A person's submitted answers, the latest first, with their states and notes."""
    rows = session.execute(
        select(Reply, Post.text)  # type: ignore[call-overload]
        .join(Post, col(Post.id) == col(Reply.post_id))
        .where(col(Reply.submitted_by_id) == staff_id, col(Reply.state).in_(SUBMISSION_STATES))
        .order_by(col(Reply.submitted_at).desc(), col(Reply.id).desc())
        .limit(limit)
    ).all()
    return [
        Submission(
            reply_id=r.id,
            post_id=r.post_id,
            state=r.state,
            text=r.text,
            note=r.note,
            submitted_at=r.submitted_at,
            updated_at=r.updated_at,
            customer_text=text,
        )
        for r, text in rows
    ]


def submission_counts(session: Session, *, staff_id: int) -> dict[str, int]:
    """How many of a person's submissions are in each state."""
    rows = session.execute(
        select(col(Reply.state), func.count())
        .where(col(Reply.submitted_by_id) == staff_id, col(Reply.state).in_(SUBMISSION_STATES))
        .group_by(col(Reply.state))
    ).all()
    return {str(state): int(n) for state, n in rows}
