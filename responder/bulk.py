"""Dismissing obvious noise several posts at a time, each with the same rules as one dismissal.

The desk sends what it showed of each post (its current answer and that answer's state). A post that changed
since (someone answered it, submitted an answer, closed it) is skipped and reported, never overwritten; a post
the person may not close (an agent and a colleague's post) is refused. Each post is its own transaction, so
one refusal never undoes the others, and each is dismissed at most once (the status check under the row lock).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from models.audit import audit
from models.tables import Post, PostStatus, Reply, ReplyKind, Score, Staff, utcnow
from responder.actions import MAX_NOTE_CHARS, InvalidReply, check_input
from responder.lifecycle import locked_post, resolve_post
from responder.permissions import Action, can_on, require

# Why a post is noise; the desk words each one (review_app.labels, group "dismiss_reason"). "other" needs a note.
REASONS = ("spam", "off_topic", "not_for_us", "duplicate", "other")
OTHER = "other"
# The most posts one press may dismiss: "all shown by this filter" is capped, and the desk asks first.
MAX_BULK = 100
OPEN = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)


@dataclass(frozen=True, slots=True)
class Seen:
    """What the desk showed of a post when the person chose it: its current answer and that answer's state."""

    reply_id: int | None
    reply_state: str | None


class Outcome(enum.StrEnum):
    """What became of one post of a bulk dismissal."""

    DISMISSED = "dismissed"
    CHANGED = "changed"  # answered, submitted or otherwise moved since it was shown: skipped
    CLOSED = "closed"  # already replied, dismissed or otherwise closed: skipped
    NOT_ALLOWED = "not_allowed"  # an agent and a post that is not theirs
    MISSING = "missing"
    CRISIS = "crisis"  # a crisis post is never noise: it is closed one at a time, after reading it


def reason_text(reason: str, note: str) -> str:
    """The dismissal's stored reason: its code, and the note after it when one was typed."""
    if reason not in REASONS:
        raise InvalidReply(f"unknown reason {reason!r}; one of {', '.join(REASONS)}")
    detail = check_input(note, what="the note", limit=MAX_NOTE_CHARS - len(reason) - 2)
    if reason == OTHER and not detail:
        raise InvalidReply("say why in the note when the reason is 'other'")
    return f"{reason}: {detail}" if detail else reason


def _current(session: Session, post_id: int) -> Seen:
    """The post's current reply as the queue shows it: its newest answer, else its newest reply."""
    rows = session.execute(
        select(col(Reply.id), col(Reply.kind), col(Reply.state))
        .where(col(Reply.post_id) == post_id)
        .order_by(col(Reply.id).asc())
    ).all()
    answers = [r for r in rows if r[1] == ReplyKind.ANSWER] or list(rows)
    return Seen(int(answers[-1][0]), str(answers[-1][2])) if answers else Seen(None, None)


def dismiss_many(
    session: Session, *, seen: Mapping[int, Seen], staff: Staff, reason: str, note: str = ""
) -> dict[int, Outcome]:
    """Dismiss each post in ``seen`` with ``reason`` (and ``note``), unless it changed since it was shown."""
    require(staff, Action.DISMISS_POST)
    text = reason_text(reason, note)
    if not seen:
        raise InvalidReply("choose at least one post")
    if len(seen) > MAX_BULK:
        raise InvalidReply(f"{len(seen)} posts chosen; at most {MAX_BULK} at once")
    by = f"staff:{staff.id}"
    outcome: dict[int, Outcome] = {}
    for post_id, shown in seen.items():
        outcome[post_id] = _dismiss_one(session, post_id=post_id, shown=shown, staff=staff, by=by, text=text)
    return outcome


def _dismiss_one(session: Session, *, post_id: int, shown: Seen, staff: Staff, by: str, text: str) -> Outcome:
    """One post of a bulk dismissal, in its own transaction."""
    try:
        post: Post | None = locked_post(session, post_id)
        if post is None:
            return Outcome.MISSING
        if post.status not in OPEN:
            return Outcome.CLOSED
        if not can_on(staff, Action.DISMISS_POST, assignee_id=post.assignee_id):
            return Outcome.NOT_ALLOWED
        if _current(session, post_id) != shown:
            return Outcome.CHANGED
        if session.execute(select(col(Score.crisis)).where(col(Score.post_id) == post_id)).scalar_one_or_none():
            # Why: a reviewer ticked the top cards and closed a self-harm post as spam with four more clicks.
            return Outcome.CRISIS
        resolve_post(session, post, status=PostStatus.DISMISSED, at=utcnow(), by=by, note=text,
                     drafts_note="post dismissed")  # fmt: skip
        audit(session, actor=by, action="post_dismissed", post_id=post_id, reason=text, bulk=True)
        session.commit()
        return Outcome.DISMISSED
    finally:
        # Whatever was not committed (a skip) lets go of the row lock before the next post.
        session.rollback()
