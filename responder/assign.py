"""The backlog sweep: give every open post that needs an answer to someone who can take it.

Highest urgency first, then longest waiting; no age cut-off, so old posts are never dropped. A post nobody
can take now waits in the holding queue (``Post.held_since``) and the managers are alerted once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session, col

from ground.clock import aware
from models.alerts import CRISIS, TEAM_FULL, add_alert, alert_managers
from models.audit import audit
from models.tables import (
    Assignment,
    AuditEvent,
    Author,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Score,
    Staff,
    utcnow,
)
from responder.drafts import DraftContext, SavedReplyBook, sla_text, suggest_reply
from responder.overflow import HOLD, choose_overflow, has_room, manager_ids, overflow_policy
from responder.policy import WorkItem, choose_assignee
from responder.sla_targets import SlaBook, lane
from responder.team import load_team

AUTO_ASSIGNER = "auto:policy"
# "Very negative" posts go to senior staff, like crisis ones.
SENIOR_NEGATIVE_P = 0.9


@dataclass(slots=True)
class _Rows:
    """Rows a sweep inserts, written with one executemany per table instead of one ORM object each."""

    assignments: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)

    def write(self, session: Session) -> None:
        """Insert the collected rows in the session's transaction and start over."""
        for model, rows in ((Assignment, self.assignments), (AuditEvent, self.audits), (Reply, self.replies)):
            if rows:
                session.execute(insert(model.__table__), rows)  # type: ignore[union-attr]
                rows.clear()


@dataclass(slots=True)
class SweepResult:
    """What one sweep did."""

    assigned: int = 0
    held: list[int] = field(default_factory=list)
    # Posts given over capacity by the overflow policy (also counted in ``assigned``).
    overflowed: list[int] = field(default_factory=list)
    team_full: bool = False


def channel_of(post: Post) -> str:
    """Name the post's channel for routing and SLA: dm or public."""
    return "dm" if post.kind == PostKind.DM else "public"


def work_item(post: Post, score: Score) -> WorkItem:
    """Describe a post to the policy."""
    assert post.id is not None
    return WorkItem(
        post_id=post.id,
        channel=channel_of(post),
        language=score.language,
        needs_senior=score.crisis or score.p_negative >= SENIOR_NEGATIVE_P,
    )


def post_due(post: Post, score: Score, book: SlaBook) -> datetime:
    """Return the post's SLA due time, computing and storing it the first time."""
    if post.due_at is None:
        post.due_at = book.due(post.created_at, channel_of(post), lane(crisis=score.crisis, complaint=score.complaint))
    return aware(post.due_at)


def give(
    session: Session,
    *,
    post: Post,
    staff: Staff,
    performed_by: str,
    reason: str,
    at: datetime,
    rows: _Rows | None = None,
) -> None:
    """Record that ``staff`` owns ``post`` now (post, assignment history, audit); the caller counts load."""
    post.assignee_id = staff.id
    post.status = PostStatus.ASSIGNED
    post.held_since = None
    session.add_all([staff, post])
    if rows is not None:
        rows.assignments.append(dict(post_id=post.id, staff_id=staff.id, assigned_at=at, ended_at=None,
                                     performed_by=performed_by, reason=reason))  # fmt: skip
        rows.audits.append(dict(at=at, actor=performed_by, action="assigned", post_id=post.id, reply_id=None,
                                detail={"staff_id": staff.id, "reason": reason}))  # fmt: skip
        return
    session.add(
        Assignment(
            post_id=post.id,  # type: ignore[arg-type]
            staff_id=staff.id,  # type: ignore[arg-type]
            assigned_at=at,
            performed_by=performed_by,
            reason=reason,
        )
    )
    audit(session, actor=performed_by, action="assigned", post_id=post.id, staff_id=staff.id, reason=reason)


def hold(session: Session, *, post: Post, at: datetime) -> None:
    """Put a post in the holding queue and alert the managers once."""
    if post.held_since is None:
        post.held_since = at
        session.add(post)
    alert_managers(
        session,
        kind="holding",
        post_id=post.id,
        key=f"holding:{post.id}",
        message=f"post {post.id} is waiting: nobody on shift with capacity, language and channel can take it",
    )


def _waiting() -> tuple[Any, ...]:
    """The filter of posts the sweep may claim: scored, needing an answer, nobody's."""
    return (
        col(Post.status) == PostStatus.SCORED,
        col(Post.needs_response).is_(True),
        col(Post.assignee_id).is_(None),
    )


def _any_waiting(session: Session) -> bool:
    # A plain read, no lock: an idle desk never takes the team lock.
    return session.execute(select(col(Post.id)).where(*_waiting()).limit(1)).first() is not None


def _claim_page(session: Session, *, limit: int, offset: int) -> list[tuple[Post, Score, Author | None]]:
    stmt = (
        select(Post, Score, Author)
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(*_waiting())
        .order_by(col(Post.urgency).desc(), col(Post.created_at).asc(), col(Post.id).asc())
        .offset(offset)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several responder workers may sweep at once: each claims rows the others are not holding.
        stmt = stmt.with_for_update(skip_locked=True, of=Post)
    return [(p, s, a) for p, s, a in session.execute(stmt).all()]


def assign_pending(
    session: Session, *, limit: int = 500, now: datetime | None = None, max_pages: int = 10
) -> SweepResult:
    """Assign open posts, highest urgency then longest waiting first; the caller commits.

    Posts nobody can take stay open (held) and keep their place in the order; the sweep pages past them so
    a wall of held posts at the top never starves assignable ones below it.
    """
    now = now or utcnow()
    result = SweepResult()
    if not _any_waiting(session):
        return result
    # The team lock first, then the claims (docs/design.md, "Lock order"): claiming posts and then waiting for
    # the staff rows deadlocked with the SLA sweep, which held the staff rows and waited to stamp due times on
    # the posts this sweep had claimed ("deadlock detected" at worker start with a backlog).
    team = load_team(session, now=now, lock=True)
    policy = overflow_policy(session)
    bosses = manager_ids(team)
    sla = SlaBook.load(session)
    book = SavedReplyBook.load(session)
    batch = _Rows()
    for _ in range(max_pages):
        # Assigned rows leave the filter once flushed; held ones stay, so they are the offset.
        rows = _claim_page(session, limit=limit, offset=len(result.held))
        if not rows:
            break
        for post, score, author in rows:
            post_due(post, score, sla)
            item = work_item(post, score)
            chosen = choose_assignee(item, team.all_slots())
            reason = "sweep"
            if chosen is None and not any(has_room(s) for s in team.all_slots()):
                result.team_full = True
                chosen = choose_overflow(item, team.all_slots(), policy=policy, managers=bosses)
                reason = f"overflow: {policy}"
            if chosen is None:
                hold(session, post=post, at=now)
                result.held.append(post.id)  # type: ignore[arg-type]
                continue
            if reason != "sweep":
                result.overflowed.append(post.id)  # type: ignore[arg-type]
            member = team.take(chosen.id, now)
            give(session, post=post, staff=member, performed_by=AUTO_ASSIGNER, reason=reason, at=now, rows=batch)
            if score.crisis:
                alert_crisis(session, post=post, staff_id=chosen.id)
            batch.replies.append(draft_row(post=post, score=score, author=author, staff=member, sla=sla, book=book,
                                           now=now))  # fmt: skip
            result.assigned += 1
        batch.write(session)
        full = not any(has_room(s) for s in team.all_slots())
        if result.assigned >= limit or len(rows) < limit or (full and policy == HOLD):
            break
        session.flush()
    if result.team_full:
        alert_team_full(session, at=now, waiting=len(result.held), policy=policy)
    return result


def alert_crisis(session: Session, *, post: Post, staff_id: int) -> None:
    """Tell the person given a crisis post, and the managers, once per post."""
    add_alert(session, key=f"crisis:{post.id}:{staff_id}", kind=CRISIS, staff_id=staff_id, post_id=post.id,
              message=f"crisis post {post.id} is yours")  # fmt: skip
    alert_managers(session, kind=CRISIS, post_id=post.id, key=f"crisis:{post.id}",
                   message=f"crisis post {post.id} came in")  # fmt: skip


def alert_team_full(session: Session, *, at: datetime, waiting: int, policy: str) -> None:
    """Tell the managers the whole team is at capacity: once an hour while it lasts."""
    message = f"the whole team is at capacity; {waiting} posts wait; overflow policy {policy}"
    alert_managers(session, kind=TEAM_FULL, post_id=None, key=f"team_full:{at:%Y%m%d%H}", message=message)


def draft_context(
    *, post: Post, score: Score, author: Author | None, staff: Staff, sla: SlaBook, now: datetime
) -> DraftContext:
    """Gather what a suggested reply to ``post`` says: language, type, names and the time left."""
    due = post_due(post, score, sla)
    left = max(60.0, (due - now).total_seconds())
    return DraftContext(
        language=score.language,
        sentiment=score.sentiment,
        complaint=score.complaint,
        crisis=score.crisis,
        is_question="?" in post.text,
        username=author.username if author else "",
        agent=staff.name.split()[0],
        network=post.network,
        sla_text=sla_text(left, score.language),
        name=author.display_name if author else "",
        p_negative=score.p_negative,
    )


def draft_row(
    *,
    post: Post,
    score: Score,
    author: Author | None,
    staff: Staff,
    sla: SlaBook,
    book: SavedReplyBook,
    now: datetime,
) -> dict[str, Any]:
    """The suggested reply to ``post`` as a row: a suggestion, or a draft when only a person may send."""
    text = suggest_reply(draft_context(post=post, score=score, author=author, staff=staff, sla=sla, now=now), book)
    return {
        "post_id": post.id,
        "kind": ReplyKind.ANSWER.value,
        "state": (ReplyState.DRAFT if post.manual_only else ReplyState.SUGGESTED).value,
        "text": text,
        "suggested_text": text,
        "idempotency_key": uuid.uuid4().hex,
        "author_staff_id": staff.id,
        "model_id": score.model_id,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def add_draft(
    session: Session,
    *,
    post: Post,
    score: Score,
    author: Author | None,
    staff: Staff,
    sla: SlaBook | None = None,
    book: SavedReplyBook | None = None,
    now: datetime | None = None,
) -> Reply:
    """Create the suggested reply (a suggestion until a person submits or approves it), or a draft for hand answers."""
    now = now or utcnow()
    ctx = draft_context(post=post, score=score, author=author, staff=staff, sla=sla or SlaBook(), now=now)
    text = suggest_reply(ctx, book)
    reply = Reply(
        post_id=post.id,  # type: ignore[arg-type]
        kind=ReplyKind.ANSWER,
        state=ReplyState.DRAFT if post.manual_only else ReplyState.SUGGESTED,
        text=text,
        suggested_text=text,
        idempotency_key=uuid.uuid4().hex,
        author_staff_id=staff.id,
        model_id=score.model_id,
    )
    session.add(reply)
    return reply


def holding_queue(session: Session) -> list[Post]:
    """Return the posts waiting for someone who can take them, longest waiting first."""
    query = (
        select(Post)
        .where(col(Post.held_since).is_not(None), col(Post.status) == PostStatus.SCORED)
        .order_by(col(Post.urgency).desc(), col(Post.held_since).asc(), col(Post.id).asc())
    )
    return list(session.execute(query).scalars())
