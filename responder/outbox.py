"""The outbox: sends each approved reply exactly once through its network's sender.

The reply row (with its idempotency key) is committed before the network call. The claim (approved →
sending) is its own transaction; a reply found in ``sending`` after a crash, or retried after any earlier
attempt, is first looked up on the network (our account's replies to that post) and only sent if absent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from listeners.base import (
    AuthFailed,
    ListenerError,
    PermanentFailure,
    RateLimited,
    Sender,
    SentReply,
    TemporaryFailure,
)
from models.audit import audit
from models.tables import Assignment, Author, Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, utcnow
from responder.provenance import build_provenance

log = logging.getLogger(__name__)

OUTBOX_ACTOR = "outbox"
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 15 * 60.0
# A reply left in ``sending`` longer than this lost its sender (crash): reconcile it. Far above the
# HTTP timeout, so a live sender is never second-guessed.
SENDING_LEASE = timedelta(minutes=5)
# Test hook: name a checkpoint here and the process dies there (after_claim, after_send, after_commit).
CRASH_ENV = "ESCUCHA_OUTBOX_CRASH_AT"

Checkpoint = Callable[[str], None]


def env_checkpoint(name: str) -> None:
    """Die at once (like SIGKILL: no cleanup, no commit) when ``ESCUCHA_OUTBOX_CRASH_AT`` names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one reply: sent, found (already on the network), retry, failed, or skipped."""

    reply_id: int
    result: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Job:
    reply_id: int
    kind: str
    text: str
    key: str
    network: str
    external_id: str
    post_kind: str
    author_external_id: str | None
    attempts: int


def backoff_seconds(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: exponential, capped."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


def _claim(engine: Engine, reply_id: int) -> bool:
    """Move one reply from approved to sending in its own transaction; False if someone else has it."""
    with Session(engine) as session:
        post_id = session.execute(select(col(Reply.post_id)).where(col(Reply.id) == reply_id)).scalar_one_or_none()
        if post_id is None:
            return False
        if session.get_bind().dialect.name == "postgresql":
            # The post row serialises claims of different replies to one post (SQLite writers are serial).
            session.execute(select(col(Post.id)).where(col(Post.id) == post_id).with_for_update())
        other = aliased(Reply)
        already_answered = exists().where(
            and_(
                col(other.post_id) == post_id,
                col(other.id) != reply_id,
                col(other.kind) == ReplyKind.ANSWER,
                col(other.state).in_([ReplyState.SENDING, ReplyState.SENT]),
            )
        )
        res = session.execute(
            update(Reply)
            .where(
                col(Reply.id) == reply_id,
                col(Reply.state) == ReplyState.APPROVED,
                (col(Reply.kind) != ReplyKind.ANSWER) | ~already_answered,
            )
            .values(state=ReplyState.SENDING, attempts=col(Reply.attempts) + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            _fail_duplicate(session, reply_id)
        session.commit()
        return res.rowcount == 1  # type: ignore[attr-defined]


def _fail_duplicate(session: Session, reply_id: int) -> None:
    # An approved answer to a post that another answer already covers must never go out.
    res = session.execute(
        update(Reply)
        .where(col(Reply.id) == reply_id, col(Reply.state) == ReplyState.APPROVED)
        .values(state=ReplyState.FAILED, error="another reply to this post was already sent", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if res.rowcount == 1:  # type: ignore[attr-defined]
        audit(session, actor=OUTBOX_ACTOR, action="reply_duplicate_blocked", reply_id=reply_id)


def _job(engine: Engine, reply_id: int) -> _Job:
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        post = session.get(Post, reply.post_id)
        assert post is not None
        author = session.get(Author, post.author_id) if post.author_id else None
        # Acks, updates and surveys go to the customer privately when the post is a DM, else as replies.
        return _Job(
            reply_id=reply_id,
            kind=reply.kind,
            text=reply.text,
            key=reply.idempotency_key,
            network=post.network,
            external_id=post.external_id,
            post_kind=post.kind,
            author_external_id=author.external_id if author else None,
            attempts=reply.attempts,
        )


def _finish(engine: Engine, reply_id: int, sent: SentReply, *, found: bool = False) -> bool:
    """Record the network's reply id; False when the reply was no longer ``sending`` (someone finished it)."""
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        if reply.state != ReplyState.SENDING:
            return False
        now = utcnow()
        reply.state = ReplyState.SENT
        reply.external_id = sent.external_id
        reply.url = sent.url
        reply.sent_at = now
        reply.updated_at = now
        reply.error = None
        reply.provenance = {**build_provenance(session, reply), "sent_at": now.isoformat(), "reconciled": found}
        session.add(reply)
        post = session.get(Post, reply.post_id)
        assert post is not None
        if reply.kind == ReplyKind.ANSWER:
            post.status = PostStatus.REPLIED
            post.resolved_at = now
            post.resolved_by = f"staff:{reply.approved_by_id}" if reply.approved_by_id else OUTBOX_ACTOR
            session.add(post)
            session.execute(
                update(Assignment)
                .where(col(Assignment.post_id) == post.id, col(Assignment.ended_at).is_(None))
                .values(ended_at=now)
                .execution_options(synchronize_session=False)
            )
        audit(
            session,
            actor=OUTBOX_ACTOR,
            action="reply_found_on_network" if found else "reply_sent",
            post_id=post.id,
            reply_id=reply_id,
            external_id=sent.external_id,
            kind=reply.kind,
        )
        session.commit()
        return True


def _give_back(engine: Engine, reply_id: int, error: str, *, final: bool, retry_after: float | None = None) -> str:
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        give_up = final or reply.attempts >= MAX_ATTEMPTS
        now = utcnow()
        reply.state = ReplyState.FAILED if give_up else ReplyState.APPROVED
        reply.error = error[:1024]
        reply.updated_at = now
        wait = retry_after if retry_after is not None else backoff_seconds(reply.attempts)
        reply.next_attempt_at = None if give_up else now + timedelta(seconds=wait)
        session.add(reply)
        audit(
            session,
            actor=OUTBOX_ACTOR,
            action="reply_failed" if give_up else "reply_retry",
            post_id=reply.post_id,
            reply_id=reply_id,
            error=error[:500],
        )
        session.commit()
        return "failed" if give_up else "retry"


def _lookup(sender: Sender, job: _Job) -> SentReply | None:
    """Ask the network whether this reply is already there; senders without the capability say no one knows."""
    find = getattr(sender, "find_reply", None)
    if find is None:
        raise PermanentFailure(f"{job.network} cannot look replies up: check the network by hand before resending")
    result: SentReply | None = find(
        external_id=job.external_id,
        kind=job.post_kind,
        author_external_id=job.author_external_id,
        text=job.text,
        idempotency_key=job.key,
    )
    return result


def send_one(
    engine: Engine,
    senders: Mapping[str, Sender],
    reply_id: int,
    *,
    checkpoint: Checkpoint = env_checkpoint,
) -> SendOutcome:
    """Claim and send one approved reply; a reply someone else claimed is skipped."""
    if not _claim(engine, reply_id):
        return SendOutcome(reply_id, "skipped", "not approved, already answered, or another sender has it")
    checkpoint("after_claim")
    job = _job(engine, reply_id)
    sender = senders.get(job.network)
    if sender is None:
        return SendOutcome(reply_id, _give_back(engine, reply_id, f"no sender for {job.network}", final=False))
    return _deliver(engine, sender, job, checkpoint=checkpoint, look_first=job.attempts > 1)


def _deliver(engine: Engine, sender: Sender, job: _Job, *, checkpoint: Checkpoint, look_first: bool) -> SendOutcome:
    rid = job.reply_id
    try:
        # An earlier attempt may have reached the network before failing or crashing: look before sending.
        sent = _lookup(sender, job) if look_first else None
        found = sent is not None
        if sent is None:
            sent = sender.send_reply(
                external_id=job.external_id,
                kind=job.post_kind,
                author_external_id=job.author_external_id,
                text=job.text,
                idempotency_key=job.key,
            )
    except RateLimited as exc:
        return SendOutcome(rid, _give_back(engine, rid, str(exc), final=False, retry_after=exc.retry_after), str(exc))
    except TemporaryFailure as exc:
        return SendOutcome(rid, _give_back(engine, rid, str(exc), final=False), str(exc))
    except (AuthFailed, PermanentFailure, ListenerError) as exc:
        return SendOutcome(rid, _give_back(engine, rid, str(exc), final=True), str(exc))
    # Any other exception leaves the reply in "sending": it may have reached the network, so the
    # reconciliation looks it up after the lease instead of sending it again blindly.
    checkpoint("after_send")
    _finish(engine, rid, sent, found=found)
    checkpoint("after_commit")
    log.info(
        "%s reply %s to %s post %s as %s (%s)",
        "found" if found else "sent",
        rid,
        job.network,
        job.external_id,
        sent.external_id,
        "DM" if job.post_kind == PostKind.DM else "public",
    )
    return SendOutcome(rid, "found" if found else "sent", sent.external_id)


def reconcile_sending(
    engine: Engine,
    senders: Mapping[str, Sender],
    *,
    older_than: timedelta = SENDING_LEASE,
    now: datetime | None = None,
) -> list[SendOutcome]:
    """Settle replies stuck in ``sending`` (their sender died): mark sent if on the network, else retry."""
    cutoff = (now or utcnow()) - older_than
    with Session(engine) as session:
        ids = list(
            session.execute(
                select(col(Reply.id))
                .where(col(Reply.state) == ReplyState.SENDING, col(Reply.updated_at) <= cutoff)
                .order_by(col(Reply.id))
            ).scalars()
        )
    outcomes: list[SendOutcome] = []
    for reply_id in ids:
        job = _job(engine, reply_id)
        sender = senders.get(job.network)
        if sender is None:
            continue
        try:
            sent = _lookup(sender, job)
        except (TemporaryFailure, RateLimited) as exc:
            outcomes.append(SendOutcome(reply_id, "unknown", str(exc)))  # look again next time
            continue
        except ListenerError as exc:
            outcomes.append(SendOutcome(reply_id, _give_back(engine, reply_id, str(exc), final=True), str(exc)))
            continue
        if sent is not None:
            _finish(engine, reply_id, sent, found=True)
            outcomes.append(SendOutcome(reply_id, "found", sent.external_id))
            continue
        outcomes.append(SendOutcome(reply_id, _requeue(engine, reply_id, cutoff), "not on the network"))
    return outcomes


def _requeue(engine: Engine, reply_id: int, cutoff: datetime) -> str:
    with Session(engine) as session:
        res = session.execute(
            update(Reply)
            .where(col(Reply.id) == reply_id, col(Reply.state) == ReplyState.SENDING, col(Reply.updated_at) <= cutoff)
            .values(state=ReplyState.APPROVED, next_attempt_at=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            audit(session, actor=OUTBOX_ACTOR, action="reply_requeued", reply_id=reply_id)
        session.commit()
        return "requeued" if res.rowcount == 1 else "skipped"  # type: ignore[attr-defined]


def send_approved(
    engine: Engine,
    senders: Mapping[str, Sender],
    *,
    limit: int = 50,
    checkpoint: Checkpoint = env_checkpoint,
    lease: timedelta = SENDING_LEASE,
) -> list[SendOutcome]:
    """Reconcile replies stuck in ``sending`` past ``lease``, then send every approved reply that is due."""
    outcomes = reconcile_sending(engine, senders, older_than=lease)
    now = utcnow()
    with Session(engine) as session:
        ids = list(
            session.execute(
                select(col(Reply.id))
                .where(
                    col(Reply.state) == ReplyState.APPROVED,
                    col(Reply.next_attempt_at).is_(None) | (col(Reply.next_attempt_at) <= now),
                )
                .order_by(col(Reply.approved_at), col(Reply.id))
                .limit(limit)
            ).scalars()
        )
    return outcomes + [send_one(engine, senders, reply_id, checkpoint=checkpoint) for reply_id in ids]
