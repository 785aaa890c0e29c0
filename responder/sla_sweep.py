"""SLA sweeps: redistribute the work of people who left, reassign predicted breaches, escalate breaches.

Runs under the same team lock as the assignment and care sweeps, taken first (docs/design.md, "Lock order").
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col

from ground.clock import aware
from models.alerts import BREACH, ESCALATION, add_alert, alert_managers
from models.audit import audit
from models.tables import (
    Author,
    Post,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Score,
    SlaEvent,
    utcnow,
)
from responder.assign import add_draft, give, hold, post_due, work_item
from responder.conversations import claim_owner
from responder.drafts import SavedReplyBook
from responder.lifecycle import end_assignment, lock_post
from responder.policy import WorkItem, choose_assignee, eligible, rank
from responder.sla_targets import SlaBook
from responder.team import Team, load_team

SLA_ACTOR = "auto:sla"
# Expected time one person spends on one post; predicts who will not reach a post before it is due.
HANDLE_S = 5 * 60
IN_FLIGHT = (ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT)


@dataclass(slots=True)
class SlaSweepResult:
    """What one SLA sweep did."""

    redistributed: list[int] = field(default_factory=list)
    reassigned_predicted: list[int] = field(default_factory=list)
    breached: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Open:
    post: Post
    score: Score

    def author(self, session: Session) -> Author | None:
        """The post's author, read only for the few posts a sweep moves (a suggested reply names them)."""
        return session.get(Author, self.post.author_id) if self.post.author_id is not None else None


def _open_filter() -> tuple[Any, ...]:
    return (
        col(Post.needs_response).is_(True),
        col(Post.status).in_([PostStatus.SCORED, PostStatus.ASSIGNED]),
    )


def _any_open(session: Session) -> bool:
    # A plain read, no lock: an idle desk never takes the team lock.
    return session.execute(select(col(Post.id)).where(*_open_filter()).limit(1)).first() is not None


def _open_posts(session: Session) -> list[_Open]:
    # Every open post, every tick: only the columns the decisions read. The network's raw payload, the text
    # and the score's reasons are loaded on first use, for the few posts that move (loading them for all
    # 25,000 open posts of a busy desk cost ~12 KB each per tick, most of the sweep's time and memory).
    rows = session.execute(
        select(Post, Score)
        .join(Score, col(Score.post_id) == col(Post.id))
        .options(defer(Post.raw), defer(Post.text), defer(Post.url), defer(Score.reasons))  # type: ignore[arg-type]
        .where(*_open_filter())
        .order_by(col(Post.id))
    ).all()
    return [_Open(p, s) for p, s in rows]


def _in_flight(session: Session, post_ids: list[int]) -> set[int]:
    """Posts whose answer is approved, going out or out: moving them would change nothing for the customer."""
    if not post_ids:
        return set()
    rows = session.execute(
        select(col(Reply.post_id)).where(
            col(Reply.post_id).in_(post_ids),
            col(Reply.kind) == ReplyKind.ANSWER,
            col(Reply.state).in_(IN_FLIGHT),
        )
    ).scalars()
    return set(rows)


def _events(session: Session, post_ids: list[int], kind: str) -> set[int]:
    if not post_ids:
        return set()
    rows = session.execute(
        select(col(SlaEvent.post_id)).where(col(SlaEvent.post_id).in_(post_ids), col(SlaEvent.kind) == kind)
    ).scalars()
    return set(rows)


def _record(session: Session, *, post: Post, kind: str, at: datetime, **detail: Any) -> None:
    assert post.id is not None and post.due_at is not None
    session.add(
        SlaEvent(post_id=post.id, kind=kind, due_at=post.due_at, at=at, staff_id=post.assignee_id, detail=detail)
    )
    audit(session, actor=SLA_ACTOR, action=f"sla_{kind}", post_id=post.id, **detail)


def _supersede_drafts(session: Session, post_id: int, at: datetime) -> None:
    # Untouched suggestions name the previous owner; edited ones are kept (a person wrote them).
    session.execute(
        update(Reply)
        .where(
            col(Reply.post_id) == post_id,
            col(Reply.kind) == ReplyKind.ANSWER,
            # A person's submission waits for its manager wherever the post goes; only suggestions are redone.
            col(Reply.state).in_([ReplyState.SUGGESTED, ReplyState.DRAFT]),
            col(Reply.text) == col(Reply.suggested_text),
        )
        .values(state=ReplyState.REJECTED, note="superseded: the post was reassigned", updated_at=at)
        .execution_options(synchronize_session=False)
    )


def move(
    session: Session,
    team: Team,
    item: _Open,
    *,
    to: int | None,
    reason: str,
    at: datetime,
    sla: SlaBook,
    book: SavedReplyBook,
) -> None:
    """Take a post from its owner and give it to ``to`` (or back to the holding queue when None)."""
    post = item.post
    assert post.id is not None
    # The post's row before its assignment and replies, the order an approval takes them in (docs/design.md,
    # "Lock order"): superseding a draft first and then waiting for the post could deadlock with an approval.
    lock_post(session, post.id)
    old = post.assignee_id
    end_assignment(session, post_id=post.id, at=at)
    if old is not None and old in team.slots and post.status == PostStatus.ASSIGNED:
        team.release(old)
    _supersede_drafts(session, post.id, at)
    if to is None:
        post.assignee_id = None
        post.status = PostStatus.SCORED
        hold(session, post=post, at=at)
        audit(session, actor=SLA_ACTOR, action="unassigned", post_id=post.id, staff_id=old, reason=reason)
        return
    member = team.take(to, at)
    give(session, post=post, staff=member, performed_by=SLA_ACTOR, reason=reason, at=at)
    if post.conversation_ref is not None:
        # The conversation's next messages follow the post to its new owner.
        claim_owner(session, post.conversation_ref, to, expected=old)
    add_draft(session, post=post, score=item.score, author=item.author(session), staff=member, sla=sla, book=book,
              now=at)  # fmt: skip


def _gone(team: Team, staff_id: int | None) -> bool:
    slot = team.slots.get(staff_id) if staff_id is not None else None
    return slot is None or not slot.available or not slot.on_shift


def redistribute(
    session: Session, team: Team, items: list[_Open], *, now: datetime, sla: SlaBook, book: SavedReplyBook
) -> tuple[list[int], list[int]]:
    """Give the open posts of people now unavailable or off shift to others; return (moved, held)."""
    mine = [i for i in items if i.post.status == PostStatus.ASSIGNED and _gone(team, i.post.assignee_id)]
    flying = _in_flight(session, [i.post.id for i in mine if i.post.id is not None])
    moved: list[int] = []
    held: list[int] = []
    for item in sorted(mine, key=lambda i: (-(i.post.urgency or 0), aware(i.post.created_at))):
        post = item.post
        if post.id in flying:
            continue
        chosen = choose_assignee(work_item(post, item.score), team.all_slots())
        move(session, team, item, to=chosen.id if chosen else None, reason="owner unavailable", at=now, sla=sla,
             book=book)  # fmt: skip
        (moved if chosen else held).append(post.id)  # type: ignore[arg-type]
    return moved, held


def _queues(items: list[_Open]) -> dict[int, list[_Open]]:
    queues: dict[int, list[_Open]] = defaultdict(list)
    for i in items:
        if i.post.status == PostStatus.ASSIGNED and i.post.assignee_id is not None and i.post.due_at is not None:
            queues[i.post.assignee_id].append(i)
    for q in queues.values():
        q.sort(key=lambda i: (aware(i.post.due_at), i.post.id))  # type: ignore[arg-type]
    return queues


def expected_done(queue_ahead: int, now: datetime, handle_s: int) -> datetime:
    """When someone with ``queue_ahead`` posts before this one will have answered it."""
    return now + timedelta(seconds=(queue_ahead + 1) * handle_s)


def reassign_predicted(
    session: Session,
    team: Team,
    items: list[_Open],
    *,
    now: datetime,
    sla: SlaBook,
    book: SavedReplyBook,
    handle_s: int = HANDLE_S,
) -> list[int]:
    """Move posts their owner will not reach before they are due to someone who will; once per due time."""
    queues = _queues(items)
    dues = {staff_id: sorted(_due_ts(i) for i in queue) for staff_id, queue in queues.items()}
    ids = [i.post.id for q in queues.values() for i in q if i.post.id is not None]
    done_before = _events(session, ids, "predicted_breach")
    flying = _in_flight(session, ids)
    moved: list[int] = []
    for staff_id, queue in list(queues.items()):
        ahead = 0  # posts before this one that stay with this owner
        for item in list(queue):
            post = item.post
            due = aware(post.due_at)  # type: ignore[arg-type]
            if post.id in done_before or post.id in flying or due <= now or expected_done(ahead, now, handle_s) <= due:
                ahead += 1
                continue
            _record(session, post=post, kind="predicted_breach", at=now, owner=staff_id)
            done_before.add(post.id)  # type: ignore[arg-type]  # it may meet us again in its new owner's queue: once per due time
            target = _better_owner(team, dues, item, exclude=staff_id, now=now, handle_s=handle_s)
            if target is not None:
                move(session, team, item, to=target, reason="predicted SLA breach", at=now, sla=sla, book=book)
                queues[target].append(item)
                queues[staff_id].remove(item)
                insort(dues.setdefault(target, []), _due_ts(item))
                dues[staff_id].remove(_due_ts(item))
                moved.append(post.id)  # type: ignore[arg-type]
            else:
                ahead += 1
    return moved


def _due_ts(item: _Open) -> float:
    return aware(item.post.due_at).timestamp()  # type: ignore[arg-type]


def _better_owner(
    team: Team, dues: dict[int, list[float]], item: _Open, *, exclude: int, now: datetime, handle_s: int
) -> int | None:
    """The first person, in the policy's order, who would reach ``item`` before it is due (``dues``: sorted)."""
    due = aware(item.post.due_at)  # type: ignore[arg-type]
    wi: WorkItem = work_item(item.post, item.score)
    # The policy's order once, and each queue's due times sorted: asking the policy again after each refusal and
    # counting each queue in full cost seconds a sweep under the team lock when a backlog predicted many breaches.
    for slot in sorted((s for s in team.all_slots() if s.id != exclude and eligible(wi, s)), key=rank):
        ahead = bisect_right(dues.get(slot.id, []), due.timestamp())
        if expected_done(ahead, now, handle_s) <= due:
            return slot.id
    return None


def escalate_breaches(
    session: Session, team: Team, items: list[_Open], *, now: datetime, sla: SlaBook, book: SavedReplyBook
) -> list[int]:
    """Record each breach once, hand the post to a senior person and alert the managers."""
    late = [i for i in items if i.post.due_at is not None and aware(i.post.due_at) <= now]
    seen = _events(session, [i.post.id for i in late if i.post.id is not None], "breached")
    flying = _in_flight(session, [i.post.id for i in late if i.post.id is not None])
    breached: list[int] = []
    for item in late:
        post = item.post
        assert post.id is not None
        if post.id in seen or post.id in flying:
            continue
        _record(session, post=post, kind="breached", at=now, owner=post.assignee_id)
        post.escalated_at = now
        session.add(post)
        before = post.assignee_id
        owner = team.slots.get(post.assignee_id) if post.assignee_id is not None else None
        if owner is None or not owner.senior:
            senior_item = WorkItem(post_id=post.id, channel=work_item(post, item.score).channel,
                                   language=item.score.language, needs_senior=True)  # fmt: skip
            chosen = choose_assignee(senior_item, team.all_slots())
            if chosen is not None:
                move(session, team, item, to=chosen.id, reason="SLA breached", at=now, sla=sla, book=book)
        if post.assignee_id is not None and post.assignee_id != before:
            # Escalated to a senior person: it is theirs now, and they should hear it from the desk.
            add_alert(session, key=f"escalation:{post.id}:{post.assignee_id}", kind=ESCALATION,
                      staff_id=post.assignee_id, post_id=post.id,
                      message=f"post {post.id} is past its SLA and escalated to you")  # fmt: skip
        elif post.assignee_id is not None:
            add_alert(session, key=f"breach:{post.id}:{post.assignee_id}", kind=BREACH, staff_id=post.assignee_id,
                      post_id=post.id, message=f"post {post.id} is past its SLA")  # fmt: skip
        alert_managers(session, kind=BREACH, post_id=post.id, key=f"breach:{post.id}",
                       message=f"post {post.id} breached its SLA (due {aware(post.due_at).isoformat()})")  # type: ignore[arg-type]  # fmt: skip
        breached.append(post.id)
    return breached


def sla_sweep(session: Session, *, now: datetime | None = None, handle_s: int = HANDLE_S) -> SlaSweepResult:
    """Run the SLA duties in order: due times, redistribution, predicted breaches, breaches; caller commits."""
    now = now or utcnow()
    result = SlaSweepResult()
    if not _any_open(session):
        return result
    # The team lock first, then the posts (docs/design.md, "Lock order"); read after the lock, the open posts
    # are also as the last sweep committed them.
    team = load_team(session, now=now, lock=True)
    items = _open_posts(session)
    sla = SlaBook.load(session)
    book = SavedReplyBook.load(session)
    for item in items:
        post_due(item.post, item.score, sla)
    result.redistributed, result.held = redistribute(session, team, items, now=now, sla=sla, book=book)
    result.reassigned_predicted = reassign_predicted(
        session, team, items, now=now, sla=sla, book=book, handle_s=handle_s
    )
    result.breached = escalate_breaches(session, team, items, now=now, sla=sla, book=book)
    session.flush()
    return result
