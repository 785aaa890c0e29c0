"""The outbox: sends each approved reply exactly once through its network's sender."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

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
from models.tables import Author, Post, PostKind, PostStatus, Reply, ReplyState, utcnow

log = logging.getLogger(__name__)

OUTBOX_ACTOR = "outbox"
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one reply: sent, retry, failed, or skipped (someone else has it)."""

    reply_id: int
    result: str
    detail: str = ""


def _claim(engine: Engine, reply_id: int) -> bool:
    """Move one reply from approved to sending in its own transaction; False if someone else has it."""
    with Session(engine) as session:
        res = session.execute(
            update(Reply)
            .where(Reply.id == reply_id, Reply.state == ReplyState.APPROVED)  # type: ignore[arg-type]
            .values(state=ReplyState.SENDING, attempts=Reply.attempts + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return res.rowcount == 1  # type: ignore[attr-defined]


def _finish(engine: Engine, reply_id: int, sent: SentReply) -> None:
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        now = utcnow()
        reply.state = ReplyState.SENT
        reply.external_id = sent.external_id
        reply.url = sent.url
        reply.sent_at = now
        reply.updated_at = now
        reply.error = None
        post = session.get(Post, reply.post_id)
        assert post is not None
        post.status = PostStatus.REPLIED
        post.resolved_at = now
        post.resolved_by = f"staff:{reply.approved_by_id}" if reply.approved_by_id else OUTBOX_ACTOR
        session.add_all([reply, post])
        audit(
            session,
            actor=OUTBOX_ACTOR,
            action="reply_sent",
            post_id=post.id,
            reply_id=reply_id,
            external_id=sent.external_id,
        )
        session.commit()


def _give_back(engine: Engine, reply_id: int, error: str, *, final: bool) -> str:
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        give_up = final or reply.attempts >= MAX_ATTEMPTS
        reply.state = ReplyState.FAILED if give_up else ReplyState.APPROVED
        reply.error = error[:1024]
        reply.updated_at = utcnow()
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


def send_one(engine: Engine, senders: Mapping[str, Sender], reply_id: int) -> SendOutcome:
    """Claim and send one approved reply; a reply someone else claimed is skipped."""
    if not _claim(engine, reply_id):
        return SendOutcome(reply_id, "skipped", "not approved, or another sender has it")
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        post = session.get(Post, reply.post_id)
        assert post is not None
        author = session.get(Author, post.author_id) if post.author_id else None
        text, key = reply.text, reply.idempotency_key
        network, external_id, kind = post.network, post.external_id, post.kind
        author_external_id = author.external_id if author else None
    sender = senders.get(network)
    if sender is None:
        return SendOutcome(reply_id, _give_back(engine, reply_id, f"no sender for {network}", final=False))
    try:
        sent = sender.send_reply(
            external_id=external_id,
            kind=kind,
            author_external_id=author_external_id,
            text=text,
            idempotency_key=key,
        )
    except (TemporaryFailure, RateLimited) as exc:
        return SendOutcome(reply_id, _give_back(engine, reply_id, str(exc), final=False), str(exc))
    except (AuthFailed, PermanentFailure, ListenerError) as exc:
        return SendOutcome(reply_id, _give_back(engine, reply_id, str(exc), final=True), str(exc))
    # Any other exception leaves the reply in "sending": it may have reached the network, so it must be
    # reconciled against the network before a retry rather than sent again blindly.
    _finish(engine, reply_id, sent)
    log.info(
        "sent reply %s to %s post %s as %s (%s)",
        reply_id,
        network,
        external_id,
        sent.external_id,
        "DM" if kind == PostKind.DM else "public",
    )
    return SendOutcome(reply_id, "sent", sent.external_id)


def send_approved(engine: Engine, senders: Mapping[str, Sender], *, limit: int = 50) -> list[SendOutcome]:
    """Send every approved reply, oldest approval first."""
    with Session(engine) as session:
        ids = list(
            session.execute(
                select(Reply.id)  # type: ignore[call-overload]
                .where(Reply.state == ReplyState.APPROVED)
                .order_by(Reply.approved_at, Reply.id)
                .limit(limit)
            ).scalars()
        )
    return [send_one(engine, senders, reply_id) for reply_id in ids]
