"""The one-object summary behind `escucha status --json`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from ground.settings import Settings
from listeners.budget import ReadBudget
from models.tables import Post, PostKind, PostStatus, Reply, Score, SourceCursor, utcnow
from networks.registry import NETWORKS
from responder.report import responder_status

OPEN = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def collect_status(session: Session, settings: Settings | None = None) -> dict[str, Any]:
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
            "throttled": c.throttled,
            "resuming": bool(c.paging),
            "rate_limits": c.rate_limits,
            "month": {"month": c.budget_month, "posts_read": c.month_posts_read, "requests": c.month_requests},
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
        # The brand's own replies leave ``new`` without a score (classifier/pipeline.py): not a scoring gap.
        "own_not_scored": count(
            col(Post.kind) == PostKind.OWN, ~select(col(Score.id)).where(col(Score.post_id) == col(Post.id)).exists()
        ),
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
        # Posts needing a response that are not yet replied, dismissed or escalated, and why they wait.
        **responder_status(session),
        "read_budget": read_budget(sources, settings) if settings is not None else None,
    }


def read_budget(sources: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Each network's reads this month against its budget: posts, requests, estimated cost and the pace.

    A network shows when it bills reads, has a budget, or read anything this month.
    """
    month = utcnow().strftime("%Y-%m")
    out: dict[str, Any] = {}
    for name, spec in NETWORKS.items():
        own = spec.settings_of(settings)
        budget = ReadBudget.of(own)
        mine = [s["month"] for s in sources if s["network"] == name and s["month"]["month"] == month]
        if not (mine or budget.limited or own.cost_per_post_usd or own.cost_per_request_usd):
            continue
        spend = budget.spend(posts_read=sum(m["posts_read"] for m in mine), requests=sum(m["requests"] for m in mine))
        pace = budget.pace(spend, utcnow())
        out[name] = {
            "month": month,
            "posts_read": spend.posts_read,
            "requests": spend.requests,
            "estimated_cost_usd": spend.cost_usd,
            "post_budget": budget.posts,
            "request_budget": budget.requests,
            "cost_budget_usd": budget.cost_usd,
            "used": round(pace.used, 4) if budget.limited else None,
            "month_elapsed": round(pace.elapsed, 4),
            "slowed": pace.note if budget.limited else None,
        }
    return out
