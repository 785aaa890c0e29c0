"""Customers hear from us: DM acknowledgements, updates when a promise slips, satisfaction questions.

Each message is an outbox row (``Reply.kind`` ack, update or survey) approved by the system, so it goes out
exactly once like any answer. Acknowledgements and delay updates go to DMs only (a public thread is not the
place for them); the satisfaction question follows the answer in private conversations (DMs, Messenger), and
under public answers only where the deployment turns it on (``CareOptions.public_survey``).

Every promise comes from ``responder.forecast`` (never the SLA target) and is recorded with its basis. A delay
update is sent only after its promise passed unanswered, once per promise, with a new forecast; staff can stop
them for a post (``stop_updates``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from ground.clock import aware
from ground.wake import wake
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
from responder.csat import PROMOTER, SATISFACTION, closes_case, parse_answer, parse_rating, record_rating
from responder.drafts import DraftContext, SavedReplyBook, suggest_reply
from responder.forecast import HandlingRates, Promise, PromiseRules, forecast, queues_ahead
from responder.lifecycle import resolve_post
from responder.permissions import Action, require
from responder.promoter import promoter_mode
from responder.sla_targets import Window, lane
from responder.team import lock_team, shift_windows

__all__ = ["CareOptions", "CareResult", "care_sweep", "parse_rating", "record_rating", "stop_updates"]

CARE_ACTOR = "auto:care"
# The PostgreSQL advisory lock that serialises care sweeps (a fixed signed 64-bit key).
CARE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"escucha:care_sweep").digest()[:8], "big", signed=True)
# Messenger only lets a page answer within 24 h of the customer's last message.
MESSAGE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CareOptions:
    """Which automatic messages are on."""

    ack_dms: bool = True
    updates: bool = True
    satisfaction: bool = True
    # The promoter question (0–10, "would you recommend us?") instead of the 1–5 one: the deployment's default;
    # an admin's switch on the desk (``responder.promoter``) overrides it.
    promoter: bool = False
    # The satisfaction question after public answers too, not only in private conversations (see ask_satisfaction).
    public_survey: bool = False
    promises: PromiseRules = field(default_factory=PromiseRules)


@dataclass(slots=True)
class CareResult:
    """What one care sweep queued or recorded."""

    acks: list[int] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    surveys: list[int] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


def _context(
    post: Post, score: Score | None, author: Author | None, staff: Staff | None, promise: Promise | None
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
        sla_text=promise.span(language) if promise else "",
        name=author.display_name if author else "",
        promise=promise.words(language) if promise else "",
        promise_time=promise.clock() if promise else "",
        private=post.kind == PostKind.DM,
        post_text=post.text or "",
    )


@dataclass(slots=True)
class _Forecaster:
    """What a sweep's forecasts share: the measured handling rates, everyone's shifts and the rules."""

    rates: HandlingRates
    shifts: dict[int, list[Window]]
    rules: PromiseRules

    @classmethod
    def load(cls, session: Session, *, now: datetime, rules: PromiseRules) -> _Forecaster:
        """Read the rates and shifts once per sweep."""
        return cls(HandlingRates.recent(session, now=now), shift_windows(session), rules)

    def promise(self, post: Post, score: Score, *, now: datetime, ahead: int) -> Promise:
        """Forecast when the post's owner answers it, with ``ahead`` of their posts before it (``queues_ahead``)."""
        return forecast(
            now=now,
            ahead=ahead,
            lane_name=lane(crisis=score.crisis, complaint=score.complaint),
            shifts=self.shifts.get(post.assignee_id or -1, []),
            rates=self.rates,
            rules=self.rules,
        )


def _promise_on(post: Post, promise: Promise) -> None:
    post.promised_at = promise.at
    post.promise_basis = {**promise.basis, "promised_at": promise.at.isoformat(), "unit": promise.unit,
                          "count": promise.count}  # fmt: skip


def _queue_all(session: Session, queued: list[tuple[Post, Reply]]) -> None:
    """Store a sweep's automatic messages with one flush, wake the outbox once and audit each."""
    if not queued:
        return
    # One flush for all (a flush, a wake-up and an audit each were most of the care sweep's time, under the team
    # lock that every assignment sweep waits for: issue 17).
    session.add_all([reply for _, reply in queued])
    session.flush()
    wake(session, "send")
    for post, reply in queued:
        audit(session, actor=CARE_ACTOR, action=f"{reply.kind}_queued", post_id=post.id, reply_id=reply.id)


def _automatic(*, post: Post, kind: str, text: str, now: datetime, promised_at: datetime | None = None) -> Reply:
    """An automatic message to the customer, approved as it is (the caller adds and flushes it)."""
    return Reply(
        promised_at=promised_at,
        post_id=post.id,  # type: ignore[arg-type]
        kind=kind,
        state=ReplyState.APPROVED,
        text=text,
        suggested_text=text,
        idempotency_key=uuid.uuid4().hex,
        approved_at=now,
        created_at=now,
        updated_at=now,
        note=f"automatic {kind}",
    )


def _has_kind(kind: str) -> object:
    return exists().where(col(Reply.post_id) == col(Post.id), col(Reply.kind) == kind)


def _conversation_acked() -> object:
    """Another message of the post's conversation, still waiting for its answer, was acknowledged already."""
    sibling = aliased(Post)
    return (
        exists()
        .where(
            col(sibling.conversation_ref) == col(Post.conversation_ref),
            col(sibling.id) != col(Post.id),
            col(sibling.status).in_([PostStatus.SCORED, PostStatus.ASSIGNED]),
        )
        .where(exists().where(col(Reply.post_id) == col(sibling.id), col(Reply.kind) == ReplyKind.ACK))
    )


def acknowledge_dms(session: Session, *, now: datetime, book: SavedReplyBook, fc: _Forecaster) -> list[int]:
    """Tell each newly assigned DM's author who will answer and by when (a forecast); that is our promise."""

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
            ~_conversation_acked(),  # type: ignore[operator]
        )
        .order_by(col(Post.created_at).asc(), col(Post.id).asc())
    ).all()
    acked: set[int] = set()
    chosen: list[tuple[Post, Score, Author | None, Staff]] = []
    for post, score, author, staff in rows:
        if post.conversation_ref is not None:
            # One acknowledgement per open conversation: three quick messages get one "we are on it".
            if post.conversation_ref in acked:
                continue
            acked.add(post.conversation_ref)
        chosen.append((post, score, author, staff))
    ahead = queues_ahead(session, [post for post, *_ in chosen])
    queued: list[tuple[Post, Reply]] = []
    for post, score, author, staff in chosen:
        promise = fc.promise(post, score, now=now, ahead=ahead.get(post.id or -1, 0))
        text = suggest_reply(_context(post, score, author, staff, promise), book, kind="ack")
        queued.append((post, _automatic(post=post, kind=ReplyKind.ACK, text=text, now=now, promised_at=promise.at)))
        _promise_on(post, promise)
        session.add(post)
    _queue_all(session, queued)
    return [post.id for post, _ in queued if post.id is not None]


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


def update_slipped(session: Session, *, now: datetime, book: SavedReplyBook, fc: _Forecaster) -> list[int]:
    """When a promise passed unanswered, say sorry once and give a new forecast (recorded as an event).

    Only a promise that has passed: never within its window. Once per promise: the new one replaces it, and
    the event is unique per (post, promise). Never for a post whose updates staff stopped.
    """
    rows = session.execute(
        select(Post, Score, Author, Staff)
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Staff, col(Staff.id) == col(Post.assignee_id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.promised_at).is_not(None),
            col(Post.promised_at) <= now,
            col(Post.updates_stopped).is_(False),
            col(Post.status).in_([PostStatus.SCORED, PostStatus.ASSIGNED]),
        )
    ).all()
    flying = _answer_in_flight([p.id for p, *_ in rows], session)
    slipped = [(post, score, author, staff) for post, score, author, staff in rows
               if post.id not in flying and aware(post.promised_at) <= now]  # fmt: skip
    ahead = queues_ahead(session, [post for post, *_ in slipped])
    done: list[int] = []
    queued: list[tuple[Post, Reply]] = []
    for post, score, author, staff in slipped:
        old = aware(post.promised_at)
        promise = fc.promise(post, score, now=now, ahead=ahead.get(post.id or -1, 0))
        session.add(SlaEvent(post_id=post.id, kind="promise_slipped", due_at=old, at=now, staff_id=post.assignee_id,
                             detail={"new_promise": promise.at.isoformat(), "basis": promise.basis}))  # fmt: skip
        _promise_on(post, promise)
        session.add(post)
        if post.kind == PostKind.DM and aware(post.created_at) >= now - MESSAGE_WINDOW:
            text = suggest_reply(_context(post, score, author, staff, promise), book, kind="update")
            reply = _automatic(post=post, kind=ReplyKind.UPDATE, text=text, now=now, promised_at=promise.at)
            queued.append((post, reply))
        done.append(post.id)
    _queue_all(session, queued)
    return done


def stop_updates(session: Session, *, post_id: int, staff: Staff, stopped: bool = True) -> Post:
    """Stop (or allow again) the automatic delay updates of a post; the caller commits."""
    require(staff, Action.SUBMIT_REPLY)
    post = session.get(Post, post_id)
    if post is None:
        raise LookupError(f"post {post_id} does not exist")
    post.updates_stopped = stopped
    session.add(post)
    audit(session, actor=f"staff:{staff.id}", action="updates_stopped" if stopped else "updates_allowed",
          post_id=post_id)  # fmt: skip
    return post


def ask_satisfaction(
    session: Session, *, now: datetime, book: SavedReplyBook, promoter: bool = False, public: bool = False
) -> list[int]:
    """After a post was answered, ask once how we did: in private conversations, and in public threads if ``public``.

    Why private only by default: a second automatic reply under every public answer is clutter on the brand's
    timeline and a second notification to the customer, and X's automation rules discourage unsolicited automated
    replies; Sprout Social and Hootsuite ask in direct messages. It was also half of everything the outbox sent
    (issue 17). A deployment that wants the public question sets ``ESCUCHA_SATISFACTION_PUBLIC=true``.
    """
    channels = () if public else (col(Post.kind) == PostKind.DM,)
    rows = session.execute(
        select(Post, Score, Author, Staff)
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Staff, col(Staff.id) == col(Post.assignee_id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.status) == PostStatus.REPLIED,
            col(Post.kind) != PostKind.OWN,
            *channels,
            # A keyword hit may only be answered by hand on X: no automatic question after it either.
            col(Post.manual_only).is_(False),
            col(Post.resolved_at) >= now - MESSAGE_WINDOW,
            ~exists().where(col(Satisfaction.post_id) == col(Post.id)),
            # Its own answer went out: the earlier messages one answer closed with it get no question of their own
            # (three DMs answered once were asked three times).
            exists().where(
                col(Reply.post_id) == col(Post.id),
                col(Reply.kind) == ReplyKind.ANSWER,
                col(Reply.state) == ReplyState.SENT,
            ),
        )
    ).all()
    asked: set[int] = set()  # conversations asked in this sweep: one question per conversation
    kind, scale = ("promoter", PROMOTER) if promoter else ("survey", SATISFACTION)
    queued: list[tuple[Post, Reply]] = []
    for post, score, author, staff in rows:
        if post.conversation_ref is not None:
            if post.conversation_ref in asked:
                continue
            asked.add(post.conversation_ref)
        ctx = _context(post, score, author, staff, None)
        # The sweep's clock was read before it saw the answer's commit: the question comes after the answer.
        at = max(now, aware(post.resolved_at)) if post.resolved_at is not None else now
        reply = _automatic(post=post, kind=ReplyKind.SURVEY, text=suggest_reply(ctx, book, kind=kind), now=at)
        queued.append((post, reply))
    # One flush for the sweep's questions (one INSERT for all of them; a flush per question was most of its time).
    _queue_all(session, queued)
    for post, reply in queued:
        assert post.id is not None
        session.add(Satisfaction(post_id=post.id, reply_id=reply.id, asked_at=reply.created_at, scale=scale))
    return [post.id for post, _ in queued if post.id is not None]


def collect_ratings(session: Session, *, now: datetime) -> list[int]:
    """Turn answers to an open satisfaction question into stored ratings; a rating alone is not new work."""
    done: list[int] = []
    for post, question in _rating_candidates(session):
        answer = parse_answer(post.text, question.scale)
        if answer is None or question.id is None or post.id is None:
            continue
        record_rating(session, satisfaction_id=question.id, score=answer.score, answer_post_id=post.id,
                      comment=answer.comment)  # fmt: skip
        audit(session, actor=CARE_ACTOR, action="satisfaction_answered", post_id=question.post_id,
              score=answer.score, scale=question.scale)  # fmt: skip
        if not closes_case(answer, question.scale):
            continue  # a low score with a comment, or a question: stored, and still there for a person
        post.needs_response = False
        post.assignee_id = None
        resolve_post(
            session,
            post,
            status=PostStatus.NO_ACTION,
            at=now,
            by=CARE_ACTOR,
            note=f"satisfaction answer {answer.score}/{question.scale} to post {question.post_id}",
            drafts_note="satisfaction answer: no reply needed",
            drafts=UNAPPROVED,
        )
        done.append(post.id)
    return done


def _rating_candidates(session: Session) -> list[tuple[Post, Satisfaction]]:
    # Only each person's newest open question per network and channel: an answer goes to the question just asked.
    # Why driven by the open posts: ranking every open question the desk ever asked (most are never answered) grew
    # with the desk's history, and the care sweep holds the team lock that every assignment sweep waits for (at 50
    # posts/s it was seconds of each sweep after five minutes: issue 17). The open posts are the desk's queue, and
    # each finds its author's newest open question through the author index.
    asker = aliased(Post)
    newest_open = (
        select(col(Satisfaction.id))
        .join(asker, col(asker.id) == col(Satisfaction.post_id))
        .where(
            col(Satisfaction.score).is_(None),
            col(asker.author_id) == col(Post.author_id),
            col(asker.network) == col(Post.network),
            or_(
                (col(Post.kind) == PostKind.DM) & (col(asker.kind) == PostKind.DM),
                (col(Post.kind) != PostKind.DM) & (col(asker.kind) != PostKind.DM),
            ),
        )
        .order_by(col(Satisfaction.asked_at).desc(), col(Satisfaction.id).desc())
        .limit(1)
        .correlate(Post)
        .scalar_subquery()
    )
    waiting = (
        select(col(Post.id).label("post_id"), newest_open.label("question_id"))
        .where(
            # Scored first, like every post (the status report counts a post closed unscored as a gap).
            col(Post.status).in_([PostStatus.SCORED, PostStatus.ASSIGNED]),
            col(Post.kind) != PostKind.OWN,
            col(Post.author_id).is_not(None),
        )
        .subquery()
    )
    rows = session.execute(
        select(Post, Satisfaction)
        .join(waiting, waiting.c.post_id == col(Post.id))
        .join(Satisfaction, col(Satisfaction.id) == waiting.c.question_id)
        .where(col(Post.id) != col(Satisfaction.post_id), col(Post.created_at) >= col(Satisfaction.asked_at))
        .order_by(col(Post.created_at), col(Post.id))
    ).all()
    seen: set[int] = set()
    out: list[tuple[Post, Satisfaction]] = []
    for post, question in rows:
        if question.id is not None and question.id not in seen:  # the first answer counts
            seen.add(question.id)
            out.append((post, question))
    return out


def survey_sweep(session: Session, *, options: CareOptions, now: datetime | None = None) -> CareResult:
    """Queue the satisfaction questions alone, without the team lock; the caller commits.

    Why apart: a question goes only after an answered post, and no sweep moves an answered post, so it needs the
    care lock (one check-then-queue at a time) but not the team lock. Queued inside ``care_sweep`` it held the team
    lock for every answer's question, and the assignment sweeps of every worker waited on it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CARE_LOCK_KEY})
    now = now or utcnow()
    result = CareResult()
    if options.satisfaction:
        book = SavedReplyBook.load(session)
        promoter = promoter_mode(session, default=options.promoter)  # the admin's switch, else the deployment's
        result.surveys = ask_satisfaction(session, now=now, book=book, promoter=promoter, public=options.public_survey)
    return result


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
    fc = _Forecaster.load(session, now=now, rules=options.promises)
    result = CareResult(answers=collect_ratings(session, now=now))
    if options.ack_dms:
        result.acks = acknowledge_dms(session, now=now, book=book, fc=fc)
    if options.updates:
        result.updates = update_slipped(session, now=now, book=book, fc=fc)
    if options.satisfaction:
        promoter = promoter_mode(session, default=options.promoter)
        result.surveys = ask_satisfaction(session, now=now, book=book, promoter=promoter, public=options.public_survey)
    return result
