"""Customers hear from us: DM acknowledgements, updates when a promise slips, satisfaction questions.

Each message is an outbox row (``Reply.kind`` ack, update or survey) approved by the system, so it goes out
exactly once like any answer. Only DMs get them: a public thread is not the place for these.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select, text
from sqlmodel import Session, col

from ground.clock import aware
from models.audit import audit
from models.tables import (
    UNAPPROVED,
    Author,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Satisfaction,
    Score,
    SlaEvent,
    Staff,
    utcnow,
)
from responder.drafts import DraftContext, SavedReplyBook, sla_text, suggest_reply
from responder.lifecycle import resolve_post
from responder.sla_targets import SlaBook, lane
from responder.team import lock_team

CARE_ACTOR = "auto:care"
# The PostgreSQL advisory lock that serialises care sweeps (a fixed signed 64-bit key).
CARE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"escucha:care_sweep").digest()[:8], "big", signed=True)
# Messenger only lets a page answer within 24 h of the customer's last message.
MESSAGE_WINDOW = timedelta(hours=24)
ANSWER_PATTERN = re.compile(r"^\s*([1-5])\s*(?:/\s*5)?\s*[.!]?\s*$")


@dataclass(frozen=True, slots=True)
class CareOptions:
    """Which automatic messages are on."""

    ack_dms: bool = True
    updates: bool = True
    satisfaction: bool = False


@dataclass(slots=True)
class CareResult:
    """What one care sweep queued or recorded."""

    acks: list[int] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    surveys: list[int] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


def _context(
    post: Post, score: Score | None, author: Author | None, staff: Staff | None, left_s: float
) -> DraftContext:
    language = score.language if score is not None else (post.lang or "en")
    return DraftContext(
        language=language,
        sentiment=score.sentiment if score else "neutral",
        complaint=score.complaint if score else 0.0,
        crisis=score.crisis if score else False,
        is_question=False,
        username=author.username if author else "",
        agent=staff.name.split()[0] if staff else ("nuestro equipo" if language == "es" else "our team"),
        network=post.network,
        sla_text=sla_text(max(60.0, left_s), language),
        name=author.display_name if author else "",
    )


def _queue(session: Session, *, post: Post, kind: str, text: str, now: datetime) -> Reply:
    reply = Reply(
        post_id=post.id,  # type: ignore[arg-type]
        kind=kind,
        state=ReplyState.APPROVED,
        text=text,
        suggested_text=text,
        idempotency_key=uuid.uuid4().hex,
        approved_at=now,
        note=f"automatic {kind}",
    )
    session.add(reply)
    session.flush()
    audit(session, actor=CARE_ACTOR, action=f"{kind}_queued", post_id=post.id, reply_id=reply.id)
    return reply


def _has_kind(kind: str) -> object:
    return exists().where(col(Reply.post_id) == col(Post.id), col(Reply.kind) == kind)


def acknowledge_dms(session: Session, *, now: datetime, book: SavedReplyBook) -> list[int]:
    """Tell each newly assigned DM's author who will answer and by when; that time becomes our promise."""
    rows = session.execute(
        select(Post, Score, Author, Staff)
        .join(Score, col(Score.post_id) == col(Post.id))
        .join(Staff, col(Staff.id) == col(Post.assignee_id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.kind) == PostKind.DM,
            col(Post.status) == PostStatus.ASSIGNED,
            col(Post.promised_at).is_(None),
            col(Post.due_at).is_not(None),
            col(Post.created_at) >= now - MESSAGE_WINDOW,
            ~_has_kind(ReplyKind.ACK),  # type: ignore[operator]
        )
    ).all()
    done: list[int] = []
    for post, score, author, staff in rows:
        due = aware(post.due_at)
        ctx = _context(post, score, author, staff, (due - now).total_seconds())
        _queue(session, post=post, kind=ReplyKind.ACK, text=suggest_reply(ctx, book, kind="ack"), now=now)
        post.promised_at = due
        session.add(post)
        done.append(post.id)
    return done


def _answer_in_flight(post_ids: list[int], session: Session) -> set[int]:
    if not post_ids:
        return set()
    return set(
        session.execute(
            select(col(Reply.post_id)).where(
                col(Reply.post_id).in_(post_ids),
                col(Reply.kind) == ReplyKind.ANSWER,
                col(Reply.state).in_([ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT]),
            )
        ).scalars()
    )


def update_slipped(session: Session, *, now: datetime, book: SavedReplyBook, sla: SlaBook) -> list[int]:
    """When a promised time passes without an answer, say sorry and give a new time (recorded as an event)."""
    rows = session.execute(
        select(Post, Score, Author, Staff)
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Staff, col(Staff.id) == col(Post.assignee_id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.promised_at).is_not(None),
            col(Post.promised_at) <= now,
            col(Post.status).in_([PostStatus.SCORED, PostStatus.ASSIGNED]),
        )
    ).all()
    flying = _answer_in_flight([p.id for p, *_ in rows], session)
    done: list[int] = []
    for post, score, author, staff in rows:
        if post.id in flying:
            continue
        old = aware(post.promised_at)
        # The new promise is a fresh target for the post's lane, never shorter than an hour.
        seconds = max(3600, sla.seconds("dm" if post.kind == PostKind.DM else "public",
                                        lane(crisis=score.crisis, complaint=score.complaint)))  # fmt: skip
        new = now + timedelta(seconds=seconds)
        session.add(SlaEvent(post_id=post.id, kind="promise_slipped", due_at=old, at=now, staff_id=post.assignee_id,
                             detail={"new_promise": new.isoformat()}))  # fmt: skip
        post.promised_at = new
        session.add(post)
        if aware(post.created_at) >= now - MESSAGE_WINDOW:
            ctx = _context(post, score, author, staff, float(seconds))
            _queue(session, post=post, kind=ReplyKind.UPDATE, text=suggest_reply(ctx, book, kind="update"), now=now)
        done.append(post.id)
    return done


def ask_satisfaction(session: Session, *, now: datetime, book: SavedReplyBook) -> list[int]:
    """After a DM was answered, ask once how we did (1–5)."""
    rows = session.execute(
        select(Post, Score, Author, Staff)
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Staff, col(Staff.id) == col(Post.assignee_id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.kind) == PostKind.DM,
            col(Post.status) == PostStatus.REPLIED,
            col(Post.resolved_at) >= now - MESSAGE_WINDOW,
            ~exists().where(col(Satisfaction.post_id) == col(Post.id)),
        )
    ).all()
    done: list[int] = []
    for post, score, author, staff in rows:
        ctx = _context(post, score, author, staff, 0.0)
        reply = _queue(session, post=post, kind=ReplyKind.SURVEY, text=suggest_reply(ctx, book, kind="survey"), now=now)
        session.add(Satisfaction(post_id=post.id, reply_id=reply.id, asked_at=now))
        done.append(post.id)
    return done


def parse_rating(text: str) -> int | None:
    """Read a 1–5 answer such as '4', ' 5/5 ' or '3.'; anything else is not an answer."""
    match = ANSWER_PATTERN.match(text)
    return int(match.group(1)) if match else None


def record_rating(session: Session, *, satisfaction_id: int, score: int, answer_post_id: int | None = None) -> None:
    """Store a customer's 1–5 answer (the caller commits)."""
    if not 1 <= score <= 5:
        raise ValueError("a satisfaction score is from 1 to 5")
    row = session.get(Satisfaction, satisfaction_id)
    if row is None:
        raise LookupError(f"satisfaction question {satisfaction_id} does not exist")
    row.score = score
    row.answered_at = utcnow()
    row.answer_post_id = answer_post_id
    session.add(row)


def collect_ratings(session: Session, *, now: datetime) -> list[int]:
    """Turn DMs that answer an open satisfaction question into stored ratings, not new work."""
    rows = _rating_candidates(session)
    done: list[int] = []
    for post, question in rows:
        rating = parse_rating(post.text)
        if rating is None or question.id is None or post.id is None:
            continue
        record_rating(session, satisfaction_id=question.id, score=rating, answer_post_id=post.id)
        post.needs_response = False
        post.assignee_id = None
        resolve_post(
            session,
            post,
            status=PostStatus.NO_ACTION,
            at=now,
            by=CARE_ACTOR,
            note=f"satisfaction answer {rating}/5 to post {question.post_id}",
            drafts_note="satisfaction answer: no reply needed",
            drafts=UNAPPROVED,
        )
        done.append(post.id)
    return done


def _rating_candidates(session: Session) -> list[tuple[Post, Satisfaction]]:
    asked = select(Post.id, Post.author_id, Post.network).subquery()  # type: ignore[call-overload]
    rows = session.execute(
        select(Post, Satisfaction)
        .join(asked, col(Satisfaction.post_id) == asked.c.id)
        .where(
            col(Satisfaction.score).is_(None),
            col(Post.kind) == PostKind.DM,
            col(Post.author_id) == asked.c.author_id,
            col(Post.network) == asked.c.network,
            col(Post.id) != asked.c.id,
            col(Post.created_at) >= col(Satisfaction.asked_at),
            col(Post.status).in_([PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED]),
        )
        .order_by(col(Post.created_at))
    ).all()
    seen: set[int] = set()
    out: list[tuple[Post, Satisfaction]] = []
    for post, question in rows:
        if question.id is not None and question.id not in seen:  # the first answer counts
            seen.add(question.id)
            out.append((post, question))
    return out


def care_sweep(session: Session, *, options: CareOptions, now: datetime | None = None) -> CareResult:
    """Queue acknowledgements, slipped-promise updates and surveys, and store ratings; the caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        # One care sweep at a time across workers (the lock ends with the caller's transaction): each step
        # checks "not queued yet" and then queues, so two responder workers sweeping at once both queued an
        # acknowledgement for the same DM (found by the fault campaign). Waiting here, the second one sees
        # what the first committed.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CARE_LOCK_KEY})
    # Then the team lock, like the assignment and SLA sweeps, before any post is read or written (docs/design.md,
    # "Lock order"): care changes posts those sweeps move, so without it the two could lock them in opposite orders.
    lock_team(session)
    now = now or utcnow()
    book = SavedReplyBook.load(session)
    result = CareResult(answers=collect_ratings(session, now=now))
    if options.ack_dms:
        result.acks = acknowledge_dms(session, now=now, book=book)
    if options.updates:
        result.updates = update_slipped(session, now=now, book=book, sla=SlaBook.load(session))
    if options.satisfaction:
        result.surveys = ask_satisfaction(session, now=now, book=book)
    return result
