"""Whether a reply can still go out the way it is meant to: a network's messaging window and its private replies.

The rules come from each network's ``NetworkSpec`` (``dm_window``, ``private_reply_window``), so nothing here
names a network. A DM answered after its window, or a second private reply to one comment, would only fail at
the network: the desk says why beforehand and, for a closed DM, offers the customer's public post instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from ground.clock import aware
from models.tables import Post, PostKind, PostStatus, Reply, ReplyState, utcnow
from networks.registry import spec_of

# What a private reply or a DM reply waiting to go out, going out or gone counts against the network's once-only rule.
PRIVATE_TAKEN = (ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT)
OPEN_STATUSES = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a reply may be sent now; if not, a reason code, the time it closed, and a public post to answer."""

    ok: bool
    reason: str = ""  # "dm_window" | "private_window" | "private_once" | "private_unsupported"
    closed_at: datetime | None = None
    public_post_id: int | None = None

    def explain(self, label: str) -> str:
        """The reason in plain English (the desk shows its own translated words)."""
        words = {
            "dm_window": f"{label} only lets a DM be answered within its messaging window after the customer's "
            "last message, and that window has closed",
            "private_window": f"{label} allows a private reply only within its window after the comment",
            "private_once": f"{label} allows one private reply per comment, and this comment has one",
            "private_unsupported": f"{label} has no private replies",
        }
        return words.get(self.reason, "")


def last_customer_message(session: Session, post: Post) -> datetime | None:
    """When the customer last wrote in this DM thread (the post's conversation, else their DMs on the network)."""
    query = select(func.max(col(Post.created_at))).where(
        col(Post.network) == post.network, col(Post.kind) == PostKind.DM, col(Post.author_id) == post.author_id
    )
    if post.conversation_id:
        query = query.where(col(Post.conversation_id) == post.conversation_id)
    newest = session.execute(query).scalar_one_or_none()
    return aware(newest) if newest is not None else aware(post.created_at)


def public_alternative(session: Session, post: Post) -> int | None:
    """The customer's newest open public post on the same network: where a closed DM can still be answered."""
    if post.author_id is None:
        return None
    found = session.execute(
        select(col(Post.id))
        .where(
            col(Post.network) == post.network,
            col(Post.author_id) == post.author_id,
            col(Post.is_public).is_(True),
            col(Post.status).in_(OPEN_STATUSES),
        )
        .order_by(col(Post.created_at).desc(), col(Post.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def reply_verdict(
    session: Session, post: Post, *, private: bool = False, reply_id: int | None = None, now: datetime | None = None
) -> Verdict:
    """Whether a reply to ``post`` (privately, when ``private``) can go out now under its network's rules."""
    spec = spec_of(post.network)
    now = now or utcnow()
    if private:
        if spec.private_reply_window is None or post.kind == PostKind.DM or not post.is_public:
            return Verdict(False, "private_unsupported")
        closes = aware(post.created_at) + spec.private_reply_window
        if now > closes:
            return Verdict(False, "private_window", closed_at=closes)
        taken = select(col(Reply.id)).where(
            col(Reply.post_id) == post.id, col(Reply.private).is_(True), col(Reply.state).in_(PRIVATE_TAKEN)
        )
        if reply_id is not None:
            taken = taken.where(col(Reply.id) != reply_id)
        if session.execute(taken.limit(1)).first() is not None:
            return Verdict(False, "private_once")
        return Verdict(True)
    if post.kind == PostKind.DM and spec.dm_window is not None:
        last = last_customer_message(session, post)
        shut = last + spec.dm_window if last is not None else None
        if shut is not None and now > shut:
            return Verdict(False, "dm_window", closed_at=shut, public_post_id=public_alternative(session, post))
    return Verdict(True)


def window_left(session: Session, post: Post, *, now: datetime | None = None) -> timedelta | None:
    """How long a DM reply can still go out (None when the network has no window or the post is public)."""
    spec = spec_of(post.network)
    if post.kind != PostKind.DM or spec.dm_window is None:
        return None
    last = last_customer_message(session, post)
    return None if last is None else last + spec.dm_window - (now or utcnow())
