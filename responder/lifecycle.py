"""A post's end, in one place: resolving it records how, who and why, and ends its open work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

from models.conversations import refresh_conversation
from models.tables import Assignment, Post, PostStatus, Reply, ReplyState

# Replies nobody has approved yet: a post that ends takes them with it (rejected ones get the closing note too).
OPEN_DRAFT = (ReplyState.SUGGESTED, ReplyState.DRAFT, ReplyState.PENDING_APPROVAL, ReplyState.REJECTED)


def lock_post(session: Session, post_id: int) -> None:
    """Hold the post's row on PostgreSQL before changing its assignment or replies (SQLite writers are serial)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(col(Post.id)).where(col(Post.id) == post_id).with_for_update())


def locked_post(session: Session, post_id: int) -> Post | None:
    """The post read fresh, under its row lock on PostgreSQL: a decision on it sees what others committed."""
    query = select(Post).where(col(Post.id) == post_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def end_assignment(session: Session, *, post_id: int, at: datetime) -> None:
    """End the post's open assignment, if it has one (its owner's load drops with it)."""
    session.execute(
        update(Assignment)
        .where(col(Assignment.post_id) == post_id, col(Assignment.ended_at).is_(None))
        .values(ended_at=at)
        .execution_options(synchronize_session=False)
    )


def close_open_work(
    session: Session, *, post_id: int, at: datetime, note: str, drafts: Sequence[ReplyState] = OPEN_DRAFT
) -> None:
    """Reject the post's unapproved replies with ``note`` and end its assignment."""
    session.execute(
        update(Reply)
        .where(col(Reply.post_id) == post_id, col(Reply.state).in_(drafts))
        .values(state=ReplyState.REJECTED, note=note, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    end_assignment(session, post_id=post_id, at=at)


def resolve_post(
    session: Session,
    post: Post,
    *,
    status: PostStatus,
    at: datetime,
    by: str,
    note: str | None = None,
    drafts_note: str | None = None,
    drafts: Sequence[ReplyState] = OPEN_DRAFT,
) -> None:
    """Mark ``post`` as ended (replied, dismissed, escalated, no action) by ``by``, and end its open work.

    With ``drafts_note`` its unapproved replies are rejected with that note; without it (a reply was just sent)
    only the assignment ends. The caller commits.
    """
    assert post.id is not None
    post.status = status
    post.resolved_at = at
    post.resolved_by = by
    if note is not None:
        post.resolution_note = note
    session.add(post)
    if drafts_note is None:
        end_assignment(session, post_id=post.id, at=at)
    else:
        close_open_work(session, post_id=post.id, at=at, note=drafts_note, drafts=drafts)
    if post.conversation_ref is not None:
        # Its conversation closes with its last waiting message; else its SLA clock moves to the next one.
        refresh_conversation(session, post.conversation_ref)
