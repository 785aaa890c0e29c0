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
from models.knowledge import KbQueryVector
from models.tables import (
    Assignment,
    AuditEvent,
    Author,
    Conversation,
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
from responder.conversations import THREAD_COLUMNS, Thread, lock_free_threads, write_owners
from responder.drafts import DraftContext, SavedReplyBook, draws_on_knowledge, is_question, suggest_reply
from responder.forecast import HandlingRates, Promise, PromiseRules, forecast, queue_ahead
from responder.overflow import HOLD, choose_overflow, has_room, manager_ids, overflow_policy
from responder.policy import StaffSlot, WorkItem, choose_assignee
from responder.sla_targets import SlaBook, Window, lane
from responder.team import Team, load_team, shift_windows

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
    # Posts left for the next sweep because their conversation's row was busy (never waited for under the lock).
    busy: list[int] = field(default_factory=list)
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


def post_due(post: Post, score: Score, book: SlaBook, *, since: datetime | None = None) -> datetime:
    """Return the post's SLA due time, computing and storing it the first time.

    ``since`` is its conversation's first unanswered message: a later message keeps that message's clock.
    """
    if post.due_at is None:
        start = aware(post.created_at)
        if since is not None and aware(since) < start:
            start = aware(since)
        post.due_at = book.due(start, channel_of(post), lane(crisis=score.crisis, complaint=score.complaint))
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


def join_owner(session: Session, *, post: Post, staff: Staff, at: datetime, rows: _Rows) -> None:
    """Give ``post`` to its conversation's owner without a new assignment (the conversation already counts)."""
    post.assignee_id = staff.id
    post.status = PostStatus.ASSIGNED
    post.held_since = None
    session.add(post)
    rows.audits.append(dict(at=at, actor=AUTO_ASSIGNER, action="joined_conversation", post_id=post.id, reply_id=None,
                            detail={"staff_id": staff.id, "conversation_id": post.conversation_ref}))  # fmt: skip


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


def _peek_texts(session: Session, *, limit: int) -> list[tuple[str, str]]:
    """(text, language) of the posts the next claim will most likely take that have no stored vector, unlocked.

    Only posts whose draft may carry a knowledge answer: the scoring batch leaves praise and crises without a vector
    on purpose (their replies come from people and saved replies), and embedding them here cost a loaded 2-core
    worker as much encoder time as the scoring batch's own vectors (issue 17).
    """
    stmt = (
        select(col(Post.text), col(Score.language), col(Score.crisis), col(Score.complaint), col(Score.sentiment))
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(KbQueryVector, col(KbQueryVector.post_id) == col(Post.id))
        .where(*_waiting(), col(KbQueryVector.post_id).is_(None))
        .order_by(col(Post.urgency).desc(), col(Post.created_at).asc(), col(Post.id).asc())
        .limit(limit)
    )
    return [
        (str(text), str(language))
        for text, language, crisis, complaint, sentiment in session.execute(stmt).all()
        if draws_on_knowledge(text=str(text), crisis=bool(crisis), complaint=float(complaint), sentiment=str(sentiment))
    ]


def _claim_page(session: Session, *, limit: int, offset: int) -> list[tuple[Post, Score, Author | None, Thread]]:
    stmt = (
        select(Post, Score, Author, *THREAD_COLUMNS)
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .outerjoin(Conversation, col(Conversation.id) == col(Post.conversation_ref))
        .where(*_waiting())
        .order_by(col(Post.urgency).desc(), col(Post.created_at).asc(), col(Post.id).asc())
        .offset(offset)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several responder workers may sweep at once: each claims rows the others are not holding.
        stmt = stmt.with_for_update(skip_locked=True, of=Post)
    return [(row[0], row[1], row[2], Thread(*row[3:])) for row in session.execute(stmt).all()]


@dataclass(slots=True)
class Promises:
    """What the suggested replies' promises are forecast from: handling rates, shifts and the rules."""

    rates: HandlingRates = field(default_factory=HandlingRates)
    shifts: dict[int, list[Window]] = field(default_factory=dict)
    rules: PromiseRules = field(default_factory=PromiseRules)

    @classmethod
    def load(cls, session: Session, *, now: datetime, rules: PromiseRules | None = None) -> Promises:
        """Read the measured rates and everyone's shifts once per sweep."""
        return cls(HandlingRates.recent(session, now=now), shift_windows(session), rules or PromiseRules())

    def promise(self, *, post: Post, score: Score, staff: Staff, ahead: int, now: datetime) -> Promise:
        """Forecast when ``staff`` answers ``post`` with ``ahead`` of their posts before it."""
        return forecast(
            now=now,
            ahead=ahead,
            lane_name=lane(crisis=score.crisis, complaint=score.complaint),
            shifts=self.shifts.get(staff.id or -1, []),
            rates=self.rates,
            rules=self.rules,
        )


def assign_pending(
    session: Session,
    *,
    limit: int = 500,
    now: datetime | None = None,
    max_pages: int = 10,
    rules: PromiseRules | None = None,
) -> SweepResult:
    """Assign open posts, highest urgency then longest waiting first; the caller commits.

    Posts nobody can take stay open (held) and keep their place in the order; the sweep pages past them so
    a wall of held posts at the top never starves assignable ones below it.
    """
    given, now = now, now or utcnow()
    result = SweepResult()
    if not _any_waiting(session):
        return result
    # The team lock first, then the claims (docs/design.md, "Lock order"): claiming posts and then waiting for
    # the staff rows deadlocked with the SLA sweep, which held the staff rows and waited to stamp due times on
    # the posts this sweep had claimed ("deadlock detected" at worker start with a backlog).
    book = SavedReplyBook.load(session)
    if book.knowledge is not None:
        # Posts are embedded for the knowledge lookup when they are scored; one scored before the knowledge base
        # had anything is embedded here, before the team lock, so another worker's sweep does not wait on it.
        book.knowledge.prefetch(_peek_texts(session, limit=limit))
    team = load_team(session, now=now, lock=True)
    if given is None:
        # The team lock may have waited for another sweep: the assignments are made now, not when the sweep began
        # (stamped with the earlier time, an assignment under load predated the score that allowed it by ~1 s).
        now = utcnow()
    policy = overflow_policy(session)
    bosses = manager_ids(team)
    sla = SlaBook.load(session)
    promises = Promises.load(session, now=now, rules=rules)
    batch = _Rows()
    owners: dict[int, int] = {}  # conversations given an owner in this sweep (the rows read above are older)
    for _ in range(max_pages):
        # Assigned rows leave the filter once flushed; held ones stay, so they are the offset.
        rows = _claim_page(session, limit=limit, offset=len(result.held) + len(result.busy))
        if not rows:
            break
        if book.knowledge is not None:
            # The vectors made when these posts were scored: one read, and no encoder under the team lock.
            book.knowledge.load_vectors([post.id for post, _, _, _ in rows if post.id is not None])
        # The conversations this page may give a first owner, locked and read again in one statement.
        ownerless = {t.id for _, _, _, t in rows if t.id is not None and _needs_owner(t, team, owners)}
        fresh = lock_free_threads(session, ownerless)
        new_owners: dict[int, int] = {}
        for post, score, author, thread in rows:
            post_due(post, score, sla, since=thread.first_unanswered_at)
            owner = owners.get(thread.id) if thread.id is not None else None
            if owner is None:
                thread = fresh.get(thread.id, thread) if thread.id is not None else thread
                owner = thread.owner_for_new_message(team)
            if owner is not None:
                # A new message in an owned open conversation goes to its owner: no second owner, no new assignment.
                member = team.staff[owner]
                ahead = _load(team, member)
                join_owner(session, post=post, staff=member, at=now, rows=batch)
            else:
                if thread.id is not None and thread.id not in fresh:
                    result.busy.append(post.id)  # type: ignore[arg-type]
                    continue
                item = work_item(post, score)
                chosen = choose_assignee(item, team.all_slots())
                reason = "sweep"
                if chosen is None and not any(has_room(s) for s in team.all_slots()):
                    # The whole team is at capacity: the admin's overflow policy decides (responder/overflow.py).
                    result.team_full = True
                    chosen = choose_overflow(item, team.all_slots(), policy=policy, managers=bosses)
                    reason = f"overflow: {policy}"
                if chosen is None:
                    hold(session, post=post, at=now)
                    result.held.append(post.id)  # type: ignore[arg-type]
                    continue
                if reason != "sweep":
                    result.overflowed.append(post.id)  # type: ignore[arg-type]
                if thread.id is not None:
                    new_owners[thread.id] = chosen.id  # the row is locked by this transaction: nobody else can move it
                # Everything the owner already has comes before this post (the sweep gives the most urgent first).
                ahead = team.slots[chosen.id].load
                member = team.take(chosen.id, now)
                give(session, post=post, staff=member, performed_by=AUTO_ASSIGNER, reason=reason, at=now, rows=batch)
            if score.crisis and member.id is not None:
                alert_crisis(session, post=post, staff_id=member.id)
            if thread.id is not None:
                owners[thread.id] = member.id  # type: ignore[assignment]
            promise = promises.promise(post=post, score=score, staff=member, ahead=ahead, now=now)
            batch.replies.append(draft_row(post=post, score=score, author=author, staff=member, sla=sla, book=book,
                                           now=now, promise=promise))  # fmt: skip
            result.assigned += 1
        write_owners(session, new_owners)
        batch.write(session)
        full = not any(has_room(s) for s in team.all_slots())
        if result.assigned >= limit or len(rows) < limit or (full and policy == HOLD):
            break
        session.flush()
    if result.team_full:
        alert_team_full(session, at=now, waiting=len(result.held), policy=policy)
    return result


def _needs_owner(thread: Thread, team: Team, owners: dict[int, int]) -> bool:
    """Whether a claimed post's conversation may be given an owner in this sweep (so its row must be locked)."""
    return thread.id not in owners and thread.owner_for_new_message(team) is None


def _load(team: Team, member: Staff) -> int:
    """What ``member`` already has before a post that joins their conversation (0 for someone off the team list)."""
    slot = team.slots.get(member.id or -1)
    return slot.load if slot is not None else 0


def _has_room(slot: StaffSlot) -> bool:
    return slot.available and slot.on_shift and slot.load < slot.capacity


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
    *, post: Post, score: Score, author: Author | None, staff: Staff, sla: SlaBook, now: datetime, promise: Promise
) -> DraftContext:
    """Gather what a suggested reply to ``post`` says: language, type, names and the forecast promise."""
    post_due(post, score, sla)
    return DraftContext(
        language=score.language,
        sentiment=score.sentiment,
        complaint=score.complaint,
        crisis=score.crisis,
        is_question=is_question(post.text),
        username=author.username if author else "",
        agent=staff.name.split()[0],
        network=post.network,
        sla_text=promise.span(score.language),
        name=author.display_name if author else "",
        p_negative=score.p_negative,
        post_id=post.id,
        promise=promise.words(score.language),
        promise_time=promise.clock(),
        private=post.kind == PostKind.DM,
        post_text=post.text,
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
    promise: Promise,
) -> dict[str, Any]:
    """The suggested reply to ``post`` as a row: a suggestion, or a draft when only a person may send."""
    ctx = draft_context(post=post, score=score, author=author, staff=staff, sla=sla, now=now, promise=promise)
    text = suggest_reply(ctx, book)
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
        "promised_at": promise.at,
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
    promises: Promises | None = None,
) -> Reply:
    """Create the suggested reply (a suggestion until a person submits or approves it), or a draft for hand answers."""
    now = now or utcnow()
    # The SLA sweep moves few posts a tick: it reads the measured rates and shifts here (with the default rules).
    promises = promises or Promises.load(session, now=now)
    promise = promises.promise(post=post, score=score, staff=staff, ahead=queue_ahead(session, post), now=now)
    ctx = draft_context(post=post, score=score, author=author, staff=staff, sla=sla or SlaBook(), now=now,
                        promise=promise)  # fmt: skip
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
        promised_at=promise.at,
        created_at=now,
        updated_at=now,
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
