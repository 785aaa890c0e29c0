"""The one-object summary behind `escucha status --json`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.tables import Post, PostKind, PostStatus, Reply, Score, SourceCursor, utcnow

OPEN = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def collect_status(session: Session) -> dict[str, Any]:
    """Count posts, scores, assignments and replies, and report each source's health."""

    def grouped(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column)).all()
        return {str(k): int(v) for k, v in rows}

    def count(*where: Any, model: Any = Post) -> int:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())

    open_public = (
        col(Post.needs_response).is_(True),
        col(Post.status).in_(OPEN),
        col(Post.kind) != PostKind.DM,
    )
    oldest = session.execute(select(func.min(Post.created_at)).where(*open_public)).scalar_one()
    now = utcnow()
    sources = [
        {
            "network": c.network,
            "source": c.source,
            "healthy": c.healthy,
            "cursor": c.cursor,
            "posts_ingested": c.posts_ingested,
            "requests_made": c.requests_made,
            "last_success_at": _iso(c.last_success_at),
            "last_error": c.last_error,
            "last_error_at": _iso(c.last_error_at),
            "next_run_at": _iso(c.next_run_at),
        }
        for c in session.execute(
            select(SourceCursor).order_by(col(SourceCursor.network), col(SourceCursor.source))
        ).scalars()
    ]
    return {
        "posts": count(),
        "posts_by_network": grouped(Post.network),
        "posts_by_kind": grouped(Post.kind),
        "posts_by_status": grouped(Post.status),
        "scored": count(model=Score),
        "unscored": count(col(Post.status) == PostStatus.NEW),
        "needing_response": count(col(Post.needs_response).is_(True)),
        "assigned": count(col(Post.assignee_id).is_not(None)),
        "open_assigned": count(col(Post.status) == PostStatus.ASSIGNED),
        "unassigned_public": count(*open_public, col(Post.assignee_id).is_(None)),
        "unassigned_dm": count(
            col(Post.needs_response).is_(True),
            col(Post.status).in_(OPEN),
            col(Post.kind) == PostKind.DM,
            col(Post.assignee_id).is_(None),
        ),
        "replies_by_state": grouped(Reply.state),
        "oldest_unanswered_public_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "sources": sources,
    }
