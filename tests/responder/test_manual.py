"""A keyword hit X lets us answer only by hand: answered by hand, or not for us; checked, locked, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.tables import AuditEvent, Post, PostKind, PostStatus, Reply, ReplyState
from responder.actions import InvalidReply, ReplyConflict, approve_reply
from responder.assign import assign_pending
from responder.manual import ANSWERED_BY_HAND, NOT_FOR_US, answered_by_hand, not_for_us
from responder.permissions import NotAllowed
from tests.support.factories import scored_post, staff


def _hit(session: Session) -> tuple[Post, Reply]:
    """A keyword hit assigned to the only available agent, with its suggestion drafted."""
    post = scored_post(session, kind=PostKind.SEARCH, manual_only=True, text="escucha the band was great tonight")
    session.commit()
    assign_pending(session)
    session.commit()
    reply = session.exec(select(Reply).where(col(Reply.post_id) == post.id)).one()[0]  # type: ignore[call-overload]
    return post, reply


def _audits(session: Session, action: str) -> int:
    return int(session.execute(select(func.count()).where(col(AuditEvent.action) == action)).scalar_one())


def test_a_keyword_hit_is_answered_by_hand_never_approved_and_closes_once(session: Session) -> None:
    agent = staff(session, "Ana Agent", role="agent")
    manager = staff(session, "Mara Manager", role="manager", available=False)
    post, reply = _hit(session)
    assert post.assignee_id == agent.id and reply.state == ReplyState.DRAFT
    with pytest.raises(InvalidReply):
        approve_reply(session, reply_id=reply.id or 0, staff=manager)
    answered_by_hand(session, post_id=post.id or 0, staff=agent, note="replied from the brand's phone")
    session.refresh(post)
    session.refresh(reply)
    assert post.status == PostStatus.REPLIED and post.resolved_by == f"staff:{agent.id}"
    assert post.resolution_note == f"{ANSWERED_BY_HAND}: replied from the brand's phone"
    # Its suggestion will never be sent, and says why.
    assert reply.state == ReplyState.REJECTED and reply.note == ANSWERED_BY_HAND
    assert _audits(session, "post_answered_by_hand") == 1
    with pytest.raises(ReplyConflict):
        not_for_us(session, post_id=post.id or 0, staff=manager)
    assert _audits(session, "post_not_for_us") == 0


def test_not_for_us_dismisses_and_only_whoever_may_close_the_post_can(session: Session) -> None:
    agent = staff(session, "Ana Agent", role="agent")
    other = staff(session, "Olga Agent", role="agent", available=False)
    marketing = staff(session, "Noa Marketing", role="marketing", available=False)
    manager = staff(session, "Mara Manager", role="manager", available=False)
    post, _ = _hit(session)
    assert post.assignee_id == agent.id
    for outsider in (other, marketing):
        with pytest.raises(NotAllowed):
            not_for_us(session, post_id=post.id or 0, staff=outsider)
    session.rollback()
    not_for_us(session, post_id=post.id or 0, staff=manager)
    session.refresh(post)
    assert post.status == PostStatus.DISMISSED and post.resolution_note == NOT_FOR_US
    assert _audits(session, "post_not_for_us") == 1


def test_a_post_the_desk_can_answer_is_not_marked_answered_by_hand(session: Session) -> None:
    agent = staff(session, "Mara Manager", role="manager")
    post = scored_post(session, text="@brand my order never arrived")
    session.commit()
    with pytest.raises(InvalidReply):
        answered_by_hand(session, post_id=post.id or 0, staff=agent)
    session.rollback()
    session.refresh(post)
    assert post.status == PostStatus.SCORED
    with pytest.raises(ReplyConflict):
        answered_by_hand(session, post_id=10**9, staff=agent)
