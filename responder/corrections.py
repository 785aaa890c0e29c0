"""A manager's reassignment and anyone's correction of the classifier, kept as labels for later training."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from models.audit import audit
from models.tables import Assignment, Correction, Post, PostStatus, Role, Score, Staff, utcnow
from responder.actions import InvalidReply, ReplyConflict, check_input
from responder.conversations import move_conversation
from responder.lifecycle import end_assignment, resolve_post
from responder.permissions import Action, require

OPEN = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)
SENTIMENTS = ("negative", "neutral", "positive")


def _open_post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise ReplyConflict(f"post {post_id} does not exist")
    if post.status not in OPEN:
        raise ReplyConflict(f"post {post_id} is already {post.status}")
    return post


def reassign_post(session: Session, *, post_id: int, staff: Staff, to_staff_id: int, reason: str = "") -> Post:
    """Give an open post to another staff member; the assignment history records who moved it."""
    require(staff, Action.REASSIGN)
    reason = check_input(reason, what="the reason", limit=255)
    post = _open_post(session, post_id)
    target = session.get(Staff, to_staff_id)
    if target is None or target.role == Role.MARKETING:
        raise InvalidReply("posts can only go to someone who answers them")
    if post.assignee_id == to_staff_id:
        raise InvalidReply(f"post {post_id} is already with {target.name}")
    now = utcnow()
    end_assignment(session, post_id=post_id, at=now)
    session.add(
        Assignment(
            post_id=post_id,
            staff_id=to_staff_id,
            assigned_at=now,
            performed_by=f"staff:{staff.id}",
            reason=reason or "reassigned",
        )
    )
    previous = post.assignee_id
    post.assignee_id = to_staff_id
    post.status = PostStatus.ASSIGNED
    post.held_since = None
    session.add(post)
    if post.conversation_ref is not None:
        # The conversation is the unit of work: it changes hands with all its messages still waiting.
        move_conversation(session, conversation_id=post.conversation_ref, staff_id=to_staff_id)
    audit(
        session, actor=f"staff:{staff.id}", action="post_reassigned", post_id=post_id, to=to_staff_id, previous=previous
    )
    session.commit()
    return post


def _label(
    session: Session, *, post: Post, staff: Staff, field: str, old: object, new: object, model: str | None
) -> None:
    session.add(
        Correction(
            post_id=post.id,  # type: ignore[arg-type]
            staff_id=staff.id,  # type: ignore[arg-type]
            field=field,
            old_value=None if old is None else str(old)[:64],
            new_value=str(new)[:64],
            model_id=model,
        )
    )


def correct_post(
    session: Session,
    *,
    post_id: int,
    staff: Staff,
    sentiment: str | None = None,
    urgency: int | None = None,
    needs_response: bool | None = None,
) -> list[str]:
    """Correct a post's sentiment, urgency or "needs a reply"; store each change as a label; return the fields."""
    require(staff, Action.CORRECT_LABELS)
    post = session.get(Post, post_id)
    if post is None:
        raise ReplyConflict(f"post {post_id} does not exist")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise InvalidReply(f"sentiment must be one of {', '.join(SENTIMENTS)}")
    if urgency is not None and not 0 <= urgency <= 100:
        raise InvalidReply("urgency must be between 0 and 100")
    score = session.execute(select(Score).where(col(Score.post_id) == post_id)).scalars().first()
    model = score.model_id if score else None
    changed: list[str] = []
    if sentiment is not None and (score is None or score.sentiment != sentiment):
        _label(
            session,
            post=post,
            staff=staff,
            field="sentiment",
            old=score and score.sentiment,
            new=sentiment,
            model=model,
        )
        if score is not None:
            score.sentiment = sentiment
            session.add(score)
        changed.append("sentiment")
    if urgency is not None and post.urgency != urgency:
        _label(session, post=post, staff=staff, field="urgency", old=post.urgency, new=urgency, model=model)
        # The queue ranks by the post's urgency; the score keeps what the model said.
        post.urgency = urgency
        changed.append("urgency")
    if needs_response is not None and post.needs_response != needs_response:
        if not needs_response and post.status not in OPEN:
            raise ReplyConflict(f"post {post_id} is already {post.status}")
        _label(
            session,
            post=post,
            staff=staff,
            field="needs_response",
            old=post.needs_response,
            new=needs_response,
            model=model,
        )
        post.needs_response = needs_response
        if not needs_response:
            resolve_post(
                session,
                post,
                status=PostStatus.NO_ACTION,
                at=utcnow(),
                by=f"staff:{staff.id}",
                note="no reply needed (corrected)",
                drafts_note="no reply needed",
            )
        changed.append("needs_response")
    if changed:
        session.add(post)
        audit(session, actor=f"staff:{staff.id}", action="post_corrected", post_id=post_id, fields=changed)
        session.commit()
    return changed
