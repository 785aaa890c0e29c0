"""Notifications per kind: crises, escalations to me, breaches, rejections of my answers and a full team."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from models.alerts import (
    BREACH,
    CRISIS,
    ESCALATION,
    REJECTED,
    TEAM_FULL,
    list_alerts,
    mark_all_read,
    mark_read,
    unread_count,
)
from models.tables import Post, Reply, ReplyState, utcnow
from responder.actions import decide_many, reject_reply, submit_reply
from responder.assign import assign_pending
from responder.sla_sweep import sla_sweep
from tests.support.factories import scored_post, staff


def _kinds(session: Session, staff_id: int | None) -> list[str]:
    assert staff_id is not None
    return sorted(a.kind for a in list_alerts(session, staff_id=staff_id))


def test_a_crisis_post_tells_its_owner_and_the_managers_once(session: Session) -> None:
    senior = staff(session, "Sara Senior", senior=True)
    boss = staff(session, "Mara Boss", role="manager", available=False)
    post = scored_post(session, crisis=True, urgency=100)
    assign_pending(session)
    session.commit()
    assert post.id is not None
    assert _kinds(session, senior.id) == [CRISIS] and _kinds(session, boss.id) == [CRISIS]
    assert [a.post_id for a in list_alerts(session, staff_id=boss.id or 0)] == [post.id]
    assign_pending(session)
    session.commit()
    assert unread_count(session, staff_id=senior.id or 0) == 1


def test_a_breach_escalated_to_a_senior_is_an_escalation_to_them_and_a_breach_to_the_managers(
    session: Session,
) -> None:
    junior = staff(session, "Juan Junior")
    boss = staff(session, "Mara Boss", role="manager", available=False)
    post = scored_post(session, urgency=60)
    assign_pending(session)
    session.commit()
    senior = staff(session, "Sara Senior", senior=True)
    session.refresh(post)
    post.due_at = utcnow() - timedelta(minutes=1)
    session.add(post)
    session.commit()
    sla_sweep(session)
    session.commit()
    assert session.get(Post, post.id).assignee_id == senior.id  # type: ignore[union-attr]
    assert _kinds(session, senior.id) == [ESCALATION]
    assert _kinds(session, boss.id) == [BREACH]
    assert _kinds(session, junior.id) == []


def test_a_rejection_tells_the_author_with_the_note_and_read_marks_count_down(session: Session) -> None:
    agent = staff(session, "Ana Agent")
    boss = staff(session, "Mara Boss", role="manager", available=False)
    posts = [scored_post(session) for _ in range(3)]
    assign_pending(session)
    session.commit()
    replies = list(session.execute(select(Reply).order_by(col(Reply.id))).scalars())
    assert len(replies) == len(posts) and all(r.state == ReplyState.SUGGESTED for r in replies)
    for reply in replies:
        submit_reply(session, reply_id=reply.id or 0, staff=agent, text=f"Edited {reply.id}")
    reject_reply(session, reply_id=replies[0].id or 0, staff=boss, note="too casual <b>")
    # Several at once, with one note: each rejection is a notification of its own.
    outcome = decide_many(session, reply_ids=[replies[1].id or 0, replies[2].id or 0], staff=boss, approve=False,
                          note="check the order number")  # fmt: skip
    assert outcome == {replies[1].id: None, replies[2].id: None}
    mine = list_alerts(session, staff_id=agent.id or 0)
    assert [a.kind for a in mine] == [REJECTED] * 3
    assert sorted(a.message for a in mine) == ["check the order number", "check the order number", "too casual <b>"]
    assert unread_count(session, staff_id=agent.id or 0) == 3
    mark_read(session, alert_id=mine[0].id or 0, staff_id=boss.id or 0)  # not hers: nothing changes
    session.commit()
    assert unread_count(session, staff_id=agent.id or 0) == 3
    mark_read(session, alert_id=mine[0].id or 0, staff_id=agent.id or 0)
    session.commit()
    assert unread_count(session, staff_id=agent.id or 0) == 2
    assert mark_all_read(session, staff_id=agent.id or 0) == 2
    session.commit()
    assert unread_count(session, staff_id=agent.id or 0) == 0 and len(list_alerts(session, staff_id=agent.id or 0)) == 3


def test_a_full_team_is_told_to_the_managers(session: Session) -> None:
    staff(session, "Ana Agent", capacity=1)
    boss = staff(session, "Mara Boss", role="manager", capacity=0)
    scored_post(session)
    scored_post(session)
    result = assign_pending(session)
    session.commit()
    assert result.team_full and result.assigned == 1 and len(result.held) == 1
    assert TEAM_FULL in _kinds(session, boss.id)
