"""The responder's part of `escucha status`: anything that needs a response and has not ended."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.tables import Alert, Post, PostStatus, Reply, ReplyState, SlaEvent, utcnow
from responder.actions import duplicate_pending

UNRESOLVED = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)
LISTED = 20


def responder_status(session: Session) -> dict[str, Any]:
    """Count posts needing a response that are not replied, dismissed or escalated, and why they wait."""
    now = utcnow()

    def count(*where: Any, model: Any = Post) -> int:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())

    unresolved = (col(Post.needs_response).is_(True), col(Post.status).in_(UNRESOLVED))
    ids = session.execute(
        select(col(Post.id)).where(*unresolved).order_by(col(Post.created_at), col(Post.id)).limit(LISTED)
    ).scalars()
    breached = select(col(SlaEvent.post_id)).where(col(SlaEvent.kind) == "breached")
    return {
        "unresolved": count(*unresolved),
        "unresolved_post_ids": list(ids),
        "holding": count(*unresolved, col(Post.held_since).is_not(None), col(Post.assignee_id).is_(None)),
        "overdue_open": count(*unresolved, col(Post.due_at).is_not(None), col(Post.due_at) <= now),
        "breached_open": count(*unresolved, col(Post.id).in_(breached)),
        "sending_replies": count(col(Reply.state) == ReplyState.SENDING, model=Reply),
        "failed_replies": count(col(Reply.state) == ReplyState.FAILED, model=Reply),
        "duplicate_pending_posts": len(duplicate_pending(session)),
        "unread_alerts": count(col(Alert.read_at).is_(None), model=Alert),
    }
