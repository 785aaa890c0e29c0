"""The outbox: sends each approved reply exactly once through its network's sender.

The reply row (with its idempotency key) is committed before the network call. The claim (approved →
sending) is its own transaction; a reply found in ``sending`` after a crash, or retried after any earlier
attempt, is first looked up on the network (our account's replies to that post) and only sent if absent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from ground.clock import aware
from models.audit import audit
from models.tables import Author, Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, Score, utcnow
from networks.base import (
    AuthFailed,
    ListenerError,
    PermanentFailure,
    PrivateReplier,
    RateLimited,
    ReplyLookup,
    Sender,
    SentReply,
    TemporaryFailure,
)
from responder.conversations import close_answered, earlier_open_messages
from responder.lifecycle import lock_post, resolve_post
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
# How far the networks' clocks may run behind ours when a reply is looked up by its creation time.
LOOKUP_SKEW = timedelta(minutes=2)
# One send tick claims and sends batch after batch while full ones keep coming, up to this many.
SEND_ROUNDS = 10
# Threads that send one claimed batch on PostgreSQL (each holds one pooled connection at a time).
SEND_THREADS = 4


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
    approved_at: datetime | None = None
    private: bool = False


def backoff_seconds(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: exponential, capped."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


def _claim(engine: Engine, reply_id: int) -> bool:
    """Move one reply from approved to sending in its own transaction; False if someone else has it."""
    with Session(engine) as session:
        post_id = session.execute(select(col(Reply.post_id)).where(col(Reply.id) == reply_id)).scalar_one_or_none()
        if post_id is None:
            return False
        # The post row serialises claims of different replies to one post.
        lock_post(session, post_id)
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


def _jobs(engine: Engine, reply_ids: Sequence[int]) -> dict[int, _Job]:
    """What sending each reply needs, by reply id, in one read (a claimed batch is read once, not once per reply)."""
    # Why one read: a session, its connection check and a query per reply were a third of the outbox's round trips,
    # and on a loaded 2-core machine each round trip waits for a core (issue 17).
    if not reply_ids:
        return {}
    with Session(engine) as session:
        rows = session.execute(
            select(
                col(Reply.id),
                col(Reply.kind),
                col(Reply.text),
                col(Reply.idempotency_key),
                col(Reply.attempts),
                col(Reply.approved_at),
                col(Reply.created_at),
                col(Reply.private),
                col(Post.network),
                col(Post.external_id),
                col(Post.kind),
                col(Author.external_id),
            )
            .join(Post, col(Post.id) == col(Reply.post_id))
            .outerjoin(Author, col(Author.id) == col(Post.author_id))
            .where(col(Reply.id).in_(list(reply_ids)))
        ).all()
    jobs: dict[int, _Job] = {}
    for (
        rid,
        kind,
        text,
        key,
        attempts,
        approved_at,
        created_at,
        private,
        network,
        external_id,
        post_kind,
        author,
    ) in rows:
        # Acks, updates and surveys go to the customer privately when the post is a DM, else as replies.
        jobs[int(rid)] = _Job(
            reply_id=int(rid),
            kind=kind,
            text=text,
            key=key,
            network=network,
            external_id=external_id,
            post_kind=post_kind,
            author_external_id=author,
            attempts=attempts,
            approved_at=approved_at or created_at,
            private=private,
        )
    return jobs


def _job(engine: Engine, reply_id: int) -> _Job:
    return _jobs(engine, [reply_id])[reply_id]


def _finish(engine: Engine, reply_id: int, sent: SentReply, *, found: bool = False) -> bool:
    """Record the network's reply id; False when the reply was no longer ``sending`` (someone finished it)."""
    with Session(engine) as session:
        reply, post, score = session.execute(
            select(Reply, Post, Score)
            .join(Post, col(Post.id) == col(Reply.post_id))
            .outerjoin(Score, col(Score.post_id) == col(Reply.post_id))
            .where(col(Reply.id) == reply_id)
        ).one()
        if reply.state != ReplyState.SENDING:
            return False
        now = utcnow()
        # Read before the reply changes, so the reply is written once (the provenance's reads flushed it before).
        provenance = {
            **build_provenance(session, reply, score=score, score_read=True),
            "sent_at": now.isoformat(),
            "reconciled": found,
        }
        reply.state = ReplyState.SENT
        reply.external_id = sent.external_id
        reply.url = sent.url
        reply.sent_at = now
        reply.updated_at = now
        reply.error = None
        reply.provenance = provenance
        session.add(reply)
        siblings = False
        if reply.kind == ReplyKind.ANSWER:
            by = f"staff:{reply.approved_by_id}" if reply.approved_by_id else OUTBOX_ACTOR
            resolve_post(session, post, status=PostStatus.REPLIED, at=now, by=by)
            siblings = bool(earlier_open_messages(session, post))
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
        # Most answers answer a conversation's only waiting message: then there is nothing more to close.
        answered_post = post.id if siblings else None
    if answered_post is not None:
        try:
            # One answer answers the conversation: its earlier messages waiting for us close with it.
            close_answered(engine, post_id=answered_post, reply_id=reply_id)
        except Exception:
            # The send is recorded already; a message left open stays visible in the queue, nothing is lost.
            log.exception("closing the conversation of post %s after reply %s failed", answered_post, reply_id)
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
    if not isinstance(sender, ReplyLookup):
        raise PermanentFailure(f"{job.network} cannot look replies up: check the network by hand before resending")
    # Nothing of ours older than the approval can be this reply (less the networks' clock skew), however alike
    # the words: a DM thread can already hold the same saved reply, sent for an earlier message.
    not_before = aware(job.approved_at) - LOOKUP_SKEW if job.approved_at is not None else None
    if job.private:
        return _private_sender(sender, job).find_private_reply(
            external_id=job.external_id, author_external_id=job.author_external_id, text=job.text,
            not_before=not_before,
        )  # fmt: skip
    result: SentReply | None = sender.find_reply(
        external_id=job.external_id,
        kind=job.post_kind,
        author_external_id=job.author_external_id,
        text=job.text,
        idempotency_key=job.key,
        not_before=not_before,
    )
    return result


def _private_sender(sender: Sender, job: _Job) -> PrivateReplier:
    """The sender as a private replier; a network without private replies refuses the reply for good."""
    if not isinstance(sender, PrivateReplier):
        raise PermanentFailure(f"{job.network} has no private replies: answer this comment publicly")
    return sender


@dataclass(frozen=True, slots=True)
class Batch:
    """What one ``claim_batch`` took: replies now ``sending`` for this process, and duplicates it failed."""

    claimed: list[int]
    duplicates: list[int]


def claim_batch(engine: Engine, *, limit: int = 50, now: datetime | None = None) -> Batch:
    """Move up to ``limit`` due approved replies to ``sending`` in one transaction, oldest approval first.

    On PostgreSQL the replies and their posts are taken ``FOR UPDATE SKIP LOCKED``: responders claiming at the
    same moment get disjoint batches instead of walking one list, and a reply whose post someone holds (an
    approval, a sweep, another claim) waits for a later tick. The post rows serialise claims of different
    answers to one post, as in ``_claim``: an answer to a post another answer already covers (sending or
    sent, or earlier in this batch) is failed as a duplicate, never sent.
    """
    now = now or utcnow()
    postgres = engine.dialect.name == "postgresql"
    with Session(engine) as session:
        query = (
            select(col(Reply.id), col(Reply.post_id), col(Reply.kind))
            .where(
                col(Reply.state) == ReplyState.APPROVED,
                col(Reply.next_attempt_at).is_(None) | (col(Reply.next_attempt_at) <= now),
            )
            .order_by(col(Reply.approved_at), col(Reply.id))
            .limit(limit)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        rows = session.execute(query).all()
        if not rows:
            return Batch([], [])
        post_ids = sorted({int(r.post_id) for r in rows})
        if postgres:
            locked = select(col(Post.id)).where(col(Post.id).in_(post_ids)).order_by(col(Post.id))
            held = set(session.execute(locked.with_for_update(skip_locked=True)).scalars())
            rows = [r for r in rows if r.post_id in held]
        answered = set(
            session.execute(
                select(col(Reply.post_id)).where(
                    col(Reply.post_id).in_(post_ids),
                    col(Reply.kind) == ReplyKind.ANSWER,
                    col(Reply.state).in_([ReplyState.SENDING, ReplyState.SENT]),
                )
            ).scalars()
        )
        claimed: list[int] = []
        duplicates: list[int] = []
        for r in rows:
            if r.kind == ReplyKind.ANSWER:
                if r.post_id in answered:
                    _fail_duplicate(session, int(r.id))
                    duplicates.append(int(r.id))
                    continue
                answered.add(r.post_id)
            claimed.append(int(r.id))
        if claimed:
            session.execute(
                update(Reply)
                .where(col(Reply.id).in_(claimed), col(Reply.state) == ReplyState.APPROVED)
                .values(state=ReplyState.SENDING, attempts=col(Reply.attempts) + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        session.commit()
        return Batch(claimed, duplicates)


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
    return send_claimed(engine, senders, reply_id, checkpoint=checkpoint)


def send_claimed(
    engine: Engine, senders: Mapping[str, Sender], reply_id: int, *, checkpoint: Checkpoint = env_checkpoint
) -> SendOutcome:
    """Send one reply this process moved to ``sending`` (looking it up first when an attempt came before)."""
    return _send_job(engine, senders, _job(engine, reply_id), checkpoint=checkpoint)


def _send_job(
    engine: Engine, senders: Mapping[str, Sender], job: _Job, *, checkpoint: Checkpoint = env_checkpoint
) -> SendOutcome:
    """``send_claimed`` for a reply whose job was read already (a claimed batch reads its jobs in one query)."""
    reply_id = job.reply_id
    sender = senders.get(job.network)
    if sender is None:
        return SendOutcome(reply_id, _give_back(engine, reply_id, f"no sender for {job.network}", final=False))
    return _deliver(engine, sender, job, checkpoint=checkpoint, look_first=job.attempts > 1)


def _deliver(engine: Engine, sender: Sender, job: _Job, *, checkpoint: Checkpoint, look_first: bool) -> SendOutcome:
    rid = job.reply_id
    try:
        # An earlier attempt may have reached the network before failing or crashing: look before sending.
        sent = _lookup(sender, job) if look_first else None
    except (RateLimited, TemporaryFailure) as exc:
        # Unsettled is not absent: the reply waits in ``sending`` for the reconciliation's next look, without
        # spending an attempt (a flaky lookup must not fail a reply that may already be on the network).
        return SendOutcome(rid, _hold(engine, rid, str(exc)), str(exc))
    except (AuthFailed, PermanentFailure, ListenerError) as exc:
        return SendOutcome(rid, _give_back(engine, rid, str(exc), final=True), str(exc))
    found = sent is not None
    try:
        if sent is None and job.private:
            sent = _private_sender(sender, job).send_private_reply(
                external_id=job.external_id, text=job.text, idempotency_key=job.key
            )
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
        "DM" if job.post_kind == PostKind.DM else "private" if job.private else "public",
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
            # Not settled (rate limit, error, page cap): never resend blind; look again a lease from now.
            outcomes.append(SendOutcome(reply_id, _hold(engine, reply_id, str(exc)), str(exc)))
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


def _hold(engine: Engine, reply_id: int, error: str) -> str:
    """Keep a reply whose lookup could not finish in ``sending``, looked at again once its lease runs out anew.

    Restarting the lease spaces the lookups out (each may page through many items, which X bills) instead of
    repeating them every tick; the error says why the reply waits.
    """
    with Session(engine) as session:
        res = session.execute(
            update(Reply)
            .where(col(Reply.id) == reply_id, col(Reply.state) == ReplyState.SENDING)
            .values(error=f"lookup unsettled: {error}"[:1024], updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            audit(session, actor=OUTBOX_ACTOR, action="reply_lookup_unsettled", reply_id=reply_id, error=error[:500])
        session.commit()
    return "unknown"


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
    rounds: int = SEND_ROUNDS,
    threads: int = SEND_THREADS,
) -> list[SendOutcome]:
    """Reconcile replies stuck in ``sending`` past ``lease``, then send the approved replies that are due.

    Batches of ``limit`` are claimed (``claim_batch``) and sent, up to ``rounds`` batches per call while full
    ones keep coming. On PostgreSQL a batch is sent on ``threads`` threads: each reply is already this
    process's, and the time goes on database and network round trips, not on the CPU. Skipped replies
    (duplicates of an answer already covered) are reported like ``send_one`` reports them.
    """
    outcomes = reconcile_sending(engine, senders, older_than=lease)
    parallel = threads > 1 and engine.dialect.name == "postgresql"
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(threads, thread_name_prefix="outbox")) if parallel else None
        for _ in range(max(1, rounds)):
            batch = claim_batch(engine, limit=limit)
            outcomes += [SendOutcome(rid, "skipped", "another reply to this post was already sent")
                         for rid in batch.duplicates]  # fmt: skip
            claimed = batch.claimed
            if not claimed:
                break
            checkpoint("after_claim")

            jobs = _jobs(engine, claimed)
            todo = [jobs[rid] for rid in claimed]
            send = functools.partial(_send_job, engine, senders, checkpoint=checkpoint)
            outcomes += list(pool.map(send, todo)) if pool is not None else [send(job) for job in todo]
            if len(claimed) + len(batch.duplicates) < limit:
                break
    return outcomes
