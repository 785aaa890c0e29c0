"""The crisis view's query: posts the classifier flagged as a crisis, open ones first, filtered and paged in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import String, case, cast, func, or_, select
from sqlmodel import Session, col

from ground.clock import aware_or_none
from models.tables import Author, Post, PostKind, Score, Staff, utcnow
from responder.sla_targets import due_at, sla_seconds
from review_app.queries import QUEUE_STATUSES, UNASSIGNED

# Which posts the view lists: open ones, closed ones of the last week, or both (open first).
STATE_OPEN = "open"
STATE_CLOSED = "closed"
STATE_ALL = "all"
STATES = (STATE_ALL, STATE_OPEN, STATE_CLOSED)
# A closed crisis stays on the view a week: long enough to look back at, short enough to stay one page.
CLOSED_FOR = timedelta(days=7)
CRISIS_PREFIX = "crisis: "


@dataclass(frozen=True, slots=True)
class CrisisFilters:
    """What the crisis view is narrowed to; an empty tuple means no restriction."""

    networks: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # crisis kinds as the classifier names them ("legal threat")
    state: str = STATE_ALL
    assignee_id: int | None = None  # a staff id, UNASSIGNED, or None for everyone
    dms_of: int | None = None  # an agent: direct messages given to someone else are left out


@dataclass(frozen=True, slots=True)
class CrisisRow:
    """One crisis post as the view lists it."""

    post_id: int
    network: str
    kind: str
    status: str
    is_open: bool
    urgency: int | None
    author: str
    assignee_name: str | None
    created_at: datetime
    due_at: datetime
    resolved_at: datetime | None
    conversation_id: int | None
    text: str
    crisis_kinds: list[str] = field(default_factory=list)


def _where(filters: CrisisFilters, now: datetime) -> list[object]:
    is_open = col(Post.status).in_(QUEUE_STATUSES)
    recent_closed = col(Post.resolved_at) >= now - CLOSED_FOR
    where: list[object] = [col(Score.crisis).is_(True)]
    if filters.state == STATE_OPEN:
        where.append(is_open)
    elif filters.state == STATE_CLOSED:
        where.append(~is_open & recent_closed)
    else:
        where.append(or_(is_open, recent_closed))
    if filters.networks:
        where.append(col(Post.network).in_(filters.networks))
    if filters.kinds:
        # The reasons are a JSON list of text; its text form holds "crisis: <kind>" on both backends.
        reasons = cast(col(Score.reasons), String)
        where.append(or_(*(reasons.contains(f"{CRISIS_PREFIX}{kind}") for kind in filters.kinds)))
    if filters.assignee_id == UNASSIGNED:
        where.append(col(Post.assignee_id).is_(None))
    elif filters.assignee_id is not None:
        where.append(col(Post.assignee_id) == filters.assignee_id)
    if filters.dms_of is not None:
        where.append(
            or_(col(Post.kind) != PostKind.DM, col(Post.assignee_id).is_(None), col(Post.assignee_id) == filters.dms_of)
        )
    return where


def fetch_crisis(
    session: Session, *, filters: CrisisFilters, limit: int = 50, offset: int = 0, now: datetime | None = None
) -> tuple[list[CrisisRow], int]:
    """One page of crisis posts (open first, most urgent first; then the latest closed) and how many match."""
    now = now or utcnow()
    where = _where(filters, now)
    base = select(func.count()).select_from(Post).join(Score, col(Score.post_id) == col(Post.id))
    total = int(session.execute(base.where(*where)).scalar_one())  # type: ignore[arg-type]
    closed_first = case((col(Post.status).in_(QUEUE_STATUSES), 0), else_=1)
    stmt = (
        select(Post, Score, col(Author.username), col(Author.display_name), col(Staff.name))
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .outerjoin(Staff, col(Staff.id) == col(Post.assignee_id))
        .where(*where)  # type: ignore[arg-type]
        .order_by(
            closed_first,
            col(Post.urgency).is_(None),
            col(Post.urgency).desc(),
            col(Post.resolved_at).desc(),
            col(Post.created_at).asc(),
            col(Post.id).asc(),
        )
        .offset(offset)
        .limit(limit)
    )
    rows: list[CrisisRow] = []
    for post, score, username, display, assignee in session.execute(stmt).all():
        assert post.id is not None
        who = f"@{username}" if username else ""
        created = aware_or_none(post.created_at) or now
        # A post the responder has not timed yet runs on the default crisis target, as the queue's card does.
        due = aware_or_none(post.due_at) or due_at(
            created, sla_seconds(crisis=True, is_dm=post.kind == PostKind.DM, complaint=score.complaint)
        )
        rows.append(
            CrisisRow(
                post_id=post.id, network=post.network, kind=post.kind, status=post.status,
                is_open=post.status in QUEUE_STATUSES,
                urgency=post.urgency if post.urgency is not None else score.urgency,
                author=f"{who} {display or ''}".strip(), assignee_name=assignee,
                created_at=created, due_at=due,
                resolved_at=aware_or_none(post.resolved_at), conversation_id=post.conversation_ref, text=post.text,
                crisis_kinds=[r[len(CRISIS_PREFIX):] for r in score.reasons if r.startswith(CRISIS_PREFIX)],
            )
        )  # fmt: skip
    return rows, total
