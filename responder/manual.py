"""Keyword hits that X lets us answer only by hand: how a person closes one from the desk.

Such a post never gets an "approve and send"; the person either answered it on the network themselves, or
decides it is not for us. Both are checked like a dismissal (agents close only their own posts), taken under the
post's row lock, recorded on the post and in the audit log.
"""

from __future__ import annotations

from sqlmodel import Session

from models.audit import audit
from models.tables import Post, PostStatus, Staff, utcnow
from responder.actions import MAX_NOTE_CHARS, InvalidReply, ReplyConflict, check_input
from responder.lifecycle import locked_post, resolve_post
from responder.permissions import Action, require, require_on

# What the post's resolution note says (the desk shows these in the reader's language).
ANSWERED_BY_HAND = "answered by hand on the network"
NOT_FOR_US = "not for us"


def _open_post(session: Session, post_id: int, staff: Staff) -> Post:
    """Return the post under its row lock, once the person may close it and it is still open."""
    require(staff, Action.DISMISS_POST)
    post = locked_post(session, post_id)
    if post is None:
        raise ReplyConflict(f"post {post_id} does not exist")
    require_on(staff, Action.DISMISS_POST, assignee_id=post.assignee_id)
    if post.status in (PostStatus.REPLIED, PostStatus.DISMISSED, PostStatus.ESCALATED, PostStatus.NO_ACTION):
        raise ReplyConflict(f"post {post_id} is already {post.status}")
    return post


def _note(base: str, detail: str) -> str:
    detail = check_input(detail, what="the note", limit=MAX_NOTE_CHARS - len(base) - 2) if detail.strip() else ""
    return f"{base}: {detail}" if detail else base


def answered_by_hand(session: Session, *, post_id: int, staff: Staff, note: str = "") -> Post:
    """Record that ``staff`` answered the post on the network themselves: it is replied, with no reply to send."""
    post = _open_post(session, post_id, staff)
    if not post.manual_only:
        # A post the desk can answer is answered through the outbox, so the reply is on record and sent once.
        raise InvalidReply("only a post that may be answered by hand alone is marked as answered by hand")
    text = _note(ANSWERED_BY_HAND, note)
    by = f"staff:{staff.id}"
    resolve_post(session, post, status=PostStatus.REPLIED, at=utcnow(), by=by, note=text, drafts_note=ANSWERED_BY_HAND)
    audit(session, actor=by, action="post_answered_by_hand", post_id=post_id, note=text)
    session.commit()
    return post


def not_for_us(session: Session, *, post_id: int, staff: Staff, note: str = "") -> Post:
    """Close a keyword hit that is not about the brand (a namesake, a game, a song): dismissed as not for us."""
    post = _open_post(session, post_id, staff)
    text = _note(NOT_FOR_US, note)
    by = f"staff:{staff.id}"
    resolve_post(session, post, status=PostStatus.DISMISSED, at=utcnow(), by=by, note=text, drafts_note=NOT_FOR_US)
    audit(session, actor=by, action="post_not_for_us", post_id=post_id, note=text)
    session.commit()
    return post
