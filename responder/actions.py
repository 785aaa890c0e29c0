"""What staff do to replies and posts: submit, approve, reject, dismiss. Permissions are checked here."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from ground.wake import wake
from models.alerts import REJECTED, add_alert
from models.audit import audit
from models.store import clean_text
from models.tables import UNAPPROVED, Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, Staff, utcnow
from networks.registry import spec_of
from networks.spec import DEFAULT_REPLY_LIMIT
from responder.lifecycle import lock_post, locked_post, resolve_post
from responder.permissions import Action, can, require, require_on
from responder.privacy import personal_data
from responder.reply_window import reply_verdict

ANSWERED = (ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT)

MAX_REPLY_CHARS = DEFAULT_REPLY_LIMIT  # a saved reply's longest text; each network checks its own limit
MAX_NOTE_CHARS = 1024  # a rejection note, a dismissal or escalation reason: the column's size


class ReplyConflict(Exception):
    """Someone else already handled this reply; the message says who and how."""


class InvalidReply(ValueError):
    """The reply text cannot be sent as it is."""


def _staff_actor(staff: Staff) -> str:
    return f"staff:{staff.id}"


def check_input(text: str, *, what: str, limit: int) -> str:
    """Return a person's typed ``text`` stripped, or raise ``InvalidReply`` (a ``ValueError``) saying why not.

    Refused rather than silently changed, so what is stored is what was typed: more than ``limit``
    characters, or characters no database column takes (NUL and other control characters but tab and
    newline, lone surrogates). An empty text passes; callers that need one say so in their own words.
    """
    cleaned = text.strip()
    if clean_text(cleaned) != cleaned:
        raise InvalidReply(f"{what} has control characters (such as NUL) that cannot be stored")
    if len(cleaned) > limit:
        raise InvalidReply(f"{what} has {len(cleaned)} characters; at most {limit}")
    return cleaned


def validate_text(text: str, *, network: str, private: bool = False, public_post: Post | None = None) -> str:
    """Return the cleaned reply text, or raise ``InvalidReply`` with the reason (``private``: it goes as a DM).

    A reply in a public thread (``public_post``) may not show the customer's personal data: it goes by DM.
    """
    cleaned = text.strip()
    if not cleaned:
        raise InvalidReply("the reply is empty")
    if clean_text(cleaned) != cleaned:
        raise InvalidReply("the reply has control characters (such as NUL) that cannot be sent")
    # Each network counts in its own way (X weighs URLs 23, emoji and CJK 2, as its composer does).
    spec = spec_of(network)
    size, limit = spec.reply_length(cleaned), spec.limit_for(private=private)
    if size > limit:
        raise InvalidReply(f"the reply has {size} characters; {spec.label} allows {limit}")
    if public_post is not None and public_post.kind != PostKind.DM and not private:
        found = personal_data(cleaned, customer_text=public_post.text or "")
        if found:
            raise InvalidReply(f"this public reply shows {found}; send personal details by direct message instead")
    return cleaned


def flag_duplicates(session: Session, *, post_id: int) -> list[int]:
    """Flag every open answer of a post when there is more than one; return their ids."""
    ids = list(
        session.execute(
            select(col(Reply.id)).where(
                col(Reply.post_id) == post_id,
                col(Reply.kind) == ReplyKind.ANSWER,
                col(Reply.state).in_(UNAPPROVED),
            )
        ).scalars()
    )
    if len(ids) > 1:
        note = "another reply to this post is pending: " + ", ".join(f"#{i}" for i in sorted(ids))
        session.execute(
            update(Reply)
            .where(col(Reply.id).in_(ids))
            .values(flag=note[:255])
            .execution_options(synchronize_session=False)
        )
    return ids if len(ids) > 1 else []


def duplicate_pending(session: Session) -> dict[int, int]:
    """Return posts with more than one open answer waiting, and how many."""
    rows = session.execute(
        select(col(Reply.post_id), func.count())
        .where(col(Reply.kind) == ReplyKind.ANSWER, col(Reply.state).in_(UNAPPROVED))
        .group_by(col(Reply.post_id))
        .having(func.count() > 1)
    ).all()
    return {int(p): int(n) for p, n in rows}


def _answered_by_other(session: Session, *, post_id: int, reply_id: int) -> Reply | None:
    return (
        session.execute(
            select(Reply).where(
                col(Reply.post_id) == post_id,
                col(Reply.id) != reply_id,
                col(Reply.kind) == ReplyKind.ANSWER,
                col(Reply.state).in_(ANSWERED),
            )
        )
        .scalars()
        .first()
    )


def _conflict(session: Session, reply_id: int, wanted: str) -> ReplyConflict:
    current = session.get(Reply, reply_id, populate_existing=True)
    if current is None:
        return ReplyConflict(f"reply {reply_id} does not exist")
    who = ""
    if current.approved_by_id is not None:
        approver = session.get(Staff, current.approved_by_id)
        who = f" by {approver.name}" if approver else ""
    return ReplyConflict(f"cannot {wanted}: reply {reply_id} is already {current.state}{who}")


def _load(session: Session, reply_id: int) -> tuple[Reply, Post]:
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise ReplyConflict(f"reply {reply_id} does not exist")
    post = session.get(Post, reply.post_id)
    assert post is not None
    return reply, post


def _transition(session: Session, *, reply_id: int, wanted: str, from_states: list[str], **values: object) -> None:
    """Move a reply out of ``from_states``; the state check in the WHERE clause makes one of two racers lose.

    The loser's transaction is rolled back and told who or what got there first.
    """
    result = session.execute(
        update(Reply)
        .where(col(Reply.id) == reply_id, col(Reply.state).in_(from_states))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise _conflict(session, reply_id, wanted)


def approve_reply(
    session: Session,
    *,
    reply_id: int,
    staff: Staff,
    text: str | None = None,
    private: bool | None = None,
    note: str | None = None,
) -> Reply:
    """Approve a reply (optionally edited; ``private``: to the commenter's inbox; a note for its author) for sending.

    Exactly one of two racing approvers wins. A reply the network would refuse (a DM after its messaging
    window, a second private reply to one comment) is refused here with the reason, before it is approved.
    """
    require(staff, Action.APPROVE_REPLY)
    note = (check_input(note, what="the note", limit=MAX_NOTE_CHARS) or None) if note else None
    reply, post = _load(session, reply_id)
    if post.manual_only:
        raise InvalidReply("this post can only be answered by hand on the network (X rule for keyword hits)")
    private = reply.private if private is None else private
    final = validate_text(
        text if text is not None else reply.text,
        network=post.network,
        private=private or post.kind == PostKind.DM,
        public_post=post,
    )
    lock_post(session, post.id)  # type: ignore[arg-type]
    verdict = reply_verdict(session, post, private=private, reply_id=reply_id)
    if not verdict.ok:
        session.rollback()
        raise InvalidReply(verdict.explain(spec_of(post.network).label))
    other = _answered_by_other(session, post_id=post.id, reply_id=reply_id)  # type: ignore[arg-type]
    if other is not None:
        session.rollback()
        raise ReplyConflict(f"cannot approve: reply {other.id} to this post is already {other.state}")
    now = utcnow()
    _transition(
        session, reply_id=reply_id, wanted="approve", from_states=list(UNAPPROVED),
        state=ReplyState.APPROVED, text=final, approved_by_id=staff.id, approved_at=now, updated_at=now,
        private=private,
        **({"note": note} if note else {}),
    )  # fmt: skip
    wake(session, "send")  # the outbox sends it as soon as the approval is committed
    audit(
        session,
        actor=_staff_actor(staff),
        action="reply_approved",
        post_id=post.id,
        reply_id=reply_id,
        edited=final != reply.suggested_text,
        submitted_by=reply.submitted_by_id,
    )
    session.commit()
    session.refresh(reply)
    return reply


def submit_reply(session: Session, *, reply_id: int, staff: Staff, text: str, private: bool = False) -> Reply:
    """Save an agent's edited reply for approval (or approve it at once for roles that may)."""
    require(staff, Action.SUBMIT_REPLY)
    if can(staff, Action.SEND_WITHOUT_APPROVAL):
        return approve_reply(session, reply_id=reply_id, staff=staff, text=text, private=private)
    reply, post = _load(session, reply_id)
    final = validate_text(text, network=post.network, private=private or post.kind == PostKind.DM, public_post=post)
    verdict = reply_verdict(session, post, private=private, reply_id=reply_id)
    if not verdict.ok:
        raise InvalidReply(verdict.explain(spec_of(post.network).label))
    _transition(
        session, reply_id=reply_id, wanted="submit",
        from_states=[*UNAPPROVED, ReplyState.REJECTED],
        state=ReplyState.PENDING_APPROVAL, text=final, author_staff_id=staff.id, submitted_by_id=staff.id,
        submitted_at=utcnow(), note=None, updated_at=utcnow(), private=private,
    )  # fmt: skip
    audit(session, actor=_staff_actor(staff), action="reply_submitted", post_id=post.id, reply_id=reply_id)
    if flag_duplicates(session, post_id=post.id):  # type: ignore[arg-type]
        audit(session, actor=_staff_actor(staff), action="duplicate_pending", post_id=post.id, reply_id=reply_id)
    session.commit()
    session.refresh(reply)
    return reply


def reject_reply(session: Session, *, reply_id: int, staff: Staff, note: str) -> Reply:
    """Send a submitted reply back to its author with a note; the author is notified."""
    require(staff, Action.REJECT_REPLY)
    if not note.strip():
        raise InvalidReply("say why the reply is rejected")
    note = check_input(note, what="the note", limit=MAX_NOTE_CHARS)
    reply, post = _load(session, reply_id)
    _transition(
        session, reply_id=reply_id, wanted="reject", from_states=[ReplyState.PENDING_APPROVAL],
        state=ReplyState.REJECTED, note=note, updated_at=utcnow(),
    )  # fmt: skip
    audit(
        session,
        actor=_staff_actor(staff),
        action="reply_rejected",
        post_id=post.id,
        reply_id=reply_id,
        note=note,
    )
    session.refresh(reply)
    if reply.submitted_by_id is not None:
        # One alert per rejection (a resubmitted answer rejected again is news again).
        add_alert(session, key=f"rejected:{reply_id}:{uuid.uuid4().hex[:16]}", kind=REJECTED,
                  staff_id=reply.submitted_by_id, post_id=post.id, message=note)  # fmt: skip
    session.commit()
    session.refresh(reply)
    return reply


def decide_many(
    session: Session, *, reply_ids: list[int], staff: Staff, approve: bool, note: str = ""
) -> dict[int, str | None]:
    """Approve (or reject with ``note``) several replies, each in its own transaction.

    Returns each reply's outcome: ``None`` when it went through, else why not (someone got there first, the
    text cannot be sent). One refusal never undoes the others; each approval is the same exactly-once
    transition as a single one, and the outbox sends what was approved.
    """
    require(staff, Action.APPROVE_REPLY if approve else Action.REJECT_REPLY)
    if not approve and not note.strip():
        raise InvalidReply("say why the replies are rejected")
    outcome: dict[int, str | None] = {}
    for reply_id in dict.fromkeys(reply_ids):
        try:
            if approve:
                approve_reply(session, reply_id=reply_id, staff=staff, note=note or None)
            else:
                reject_reply(session, reply_id=reply_id, staff=staff, note=note)
            outcome[reply_id] = None
        except (ReplyConflict, InvalidReply) as exc:
            session.rollback()
            outcome[reply_id] = str(exc)
    return outcome


def dismiss_post(session: Session, *, post_id: int, staff: Staff, reason: str) -> Post:
    """Close a post without replying, recording the reason and who decided."""
    require(staff, Action.DISMISS_POST)
    if not reason.strip():
        raise InvalidReply("say why the post needs no reply")
    reason = check_input(reason, what="the reason", limit=MAX_NOTE_CHARS)
    # Checked and changed under the row lock: a reassignment or a send committed meanwhile is seen here.
    post = locked_post(session, post_id)
    if post is None:
        raise ReplyConflict(f"post {post_id} does not exist")
    require_on(staff, Action.DISMISS_POST, assignee_id=post.assignee_id)
    if post.status in (PostStatus.REPLIED, PostStatus.DISMISSED):
        raise ReplyConflict(f"post {post_id} is already {post.status}")
    by = _staff_actor(staff)
    resolve_post(
        session, post, status=PostStatus.DISMISSED, at=utcnow(), by=by, note=reason, drafts_note="post dismissed"
    )
    audit(session, actor=_staff_actor(staff), action="post_dismissed", post_id=post_id, reason=reason)
    session.commit()
    return post


def escalate_post(session: Session, *, post_id: int, staff: Staff, reason: str) -> Post:
    """Hand a post over outside the desk (legal, PR, a specialist team), recording the reason and who."""
    require(staff, Action.ESCALATE_POST)
    if not reason.strip():
        raise InvalidReply("say why and to whom the post is escalated")
    reason = check_input(reason, what="the reason", limit=MAX_NOTE_CHARS)
    # Checked and changed under the row lock: a reassignment or a send committed meanwhile is seen here.
    post = locked_post(session, post_id)
    if post is None:
        raise ReplyConflict(f"post {post_id} does not exist")
    require_on(staff, Action.ESCALATE_POST, assignee_id=post.assignee_id)
    if post.status in (PostStatus.REPLIED, PostStatus.DISMISSED, PostStatus.ESCALATED):
        raise ReplyConflict(f"post {post_id} is already {post.status}")
    now = utcnow()
    post.escalated_at = now
    by = _staff_actor(staff)
    resolve_post(session, post, status=PostStatus.ESCALATED, at=now, by=by, note=reason, drafts_note="post escalated")
    audit(session, actor=_staff_actor(staff), action="post_escalated", post_id=post_id, reason=reason)
    session.commit()
    return post
