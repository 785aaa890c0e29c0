"""The backlog sweep: give every open post that needs an answer to someone who can take it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.audit import audit
from models.tables import (
    Assignment,
    Author,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyState,
    Score,
    Staff,
    utcnow,
)
from responder.drafts import DraftContext, sla_text, suggest_reply
from responder.policy import StaffSlot, WorkItem, choose_assignee, parse_codes
from responder.sla import sla_seconds

AUTO_ASSIGNER = "auto:policy"
# "Very negative" posts go to senior staff, like crisis ones.
SENIOR_NEGATIVE_P = 0.9


@dataclass(slots=True)
class SweepResult:
    """What one sweep did."""

    assigned: int = 0
    held: list[int] = field(default_factory=list)


def staff_slots(session: Session, team: list[Staff]) -> dict[int, StaffSlot]:
    """Describe each staff member to the policy, with their current load of open posts."""
    rows = session.execute(
        select(col(Post.assignee_id), func.count())
        .where(col(Post.status) == PostStatus.ASSIGNED, col(Post.assignee_id).is_not(None))
        .group_by(col(Post.assignee_id))
    ).all()
    loads: dict[int, int] = {int(sid): int(n) for sid, n in rows}
    slots: dict[int, StaffSlot] = {}
    for s in team:
        assert s.id is not None
        slots[s.id] = StaffSlot(
            id=s.id,
            languages=parse_codes(s.languages),
            channels=parse_codes(s.channels),
            senior=s.senior,
            capacity=s.capacity,
            load=loads.get(s.id, 0),
            available=s.available,
            last_assigned_at=s.last_assigned_at,
        )
    return slots


def assign_pending(session: Session, *, limit: int = 500) -> SweepResult:
    """Assign open posts, highest urgency then longest waiting first; the caller commits."""
    result = SweepResult()
    team = list(session.execute(select(Staff)).scalars())
    staff_by_id = {s.id: s for s in team}
    slots = staff_slots(session, team)
    stmt = (
        select(Post, Score, Author)
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.status) == PostStatus.SCORED,
            col(Post.needs_response).is_(True),
            col(Post.assignee_id).is_(None),
        )
        .order_by(col(Post.urgency).desc(), col(Post.created_at).asc(), col(Post.id).asc())
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several responder workers may sweep at once: each claims rows the others are not holding.
        stmt = stmt.with_for_update(skip_locked=True, of=Post)
    now = utcnow()
    for post, score, author in session.execute(stmt).all():
        is_dm = post.kind == PostKind.DM
        item = WorkItem(
            post_id=post.id,
            channel="dm" if is_dm else "public",
            language=score.language,
            needs_senior=score.crisis or score.p_negative >= SENIOR_NEGATIVE_P,
        )
        chosen = choose_assignee(item, list(slots.values()))
        if chosen is None:
            result.held.append(post.id)
            continue
        slots[chosen.id] = replace(chosen, load=chosen.load + 1, last_assigned_at=now)
        staff = staff_by_id[chosen.id]
        staff.last_assigned_at = now
        post.assignee_id = chosen.id
        post.status = PostStatus.ASSIGNED
        session.add_all([staff, post])
        session.add(Assignment(post_id=post.id, staff_id=chosen.id, performed_by=AUTO_ASSIGNER, reason="sweep"))
        audit(session, actor=AUTO_ASSIGNER, action="assigned", post_id=post.id, staff_id=chosen.id)
        _add_draft(session, post=post, score=score, author=author, staff=staff)
        result.assigned += 1
    return result


def _add_draft(session: Session, *, post: Post, score: Score, author: Author | None, staff: Staff) -> None:
    """Create the suggested reply, waiting for approval, unless the post can only be answered by hand."""
    ctx = DraftContext(
        language=score.language,
        sentiment=score.sentiment,
        complaint=score.complaint,
        crisis=score.crisis,
        is_question="?" in post.text,
        username=author.username if author else "",
        agent=staff.name.split()[0],
        network=post.network,
        sla_text=sla_text(
            sla_seconds(crisis=score.crisis, is_dm=post.kind == PostKind.DM, complaint=score.complaint),
            score.language,
        ),
    )
    text = suggest_reply(ctx)
    session.add(
        Reply(
            post_id=post.id,  # type: ignore[arg-type]
            state=ReplyState.DRAFT if post.manual_only else ReplyState.PENDING_APPROVAL,
            text=text,
            suggested_text=text,
            idempotency_key=uuid.uuid4().hex,
            author_staff_id=staff.id,
            model_id=score.model_id,
        )
    )
