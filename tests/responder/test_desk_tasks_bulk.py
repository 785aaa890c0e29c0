"""Keyword hits turned into tasks, and obvious noise dismissed in bulk: rules, races and the audit (both backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.alerts import TASK, list_alerts
from models.tables import AuditEvent, Post, PostKind, PostStatus, Reply, ReplyState, Task, utcnow
from responder.actions import InvalidReply, ReplyConflict, approve_reply, submit_reply
from responder.assign import assign_pending
from responder.bulk import MAX_BULK, Outcome, Seen, dismiss_many
from responder.permissions import NotAllowed
from responder.tasks import complete_task, convert_to_task, list_tasks, open_task_count
from review_app.queries import shown_replies
from tests.support.factories import scored_post, staff


def _audits(session: Session, action: str) -> list[AuditEvent]:
    return list(session.execute(select(AuditEvent).where(col(AuditEvent.action) == action)).scalars())


def _seen(session: Session, *posts: Post) -> dict[int, Seen]:
    return {pid: Seen(*shown) for pid, shown in shown_replies(session, post_ids=[p.id or 0 for p in posts]).items()}


def test_a_hit_becomes_a_task_the_post_closes_the_assignee_is_told_and_done_records_who(session: Session) -> None:
    boss = staff(session, "Mara Manager", role="manager", available=False)
    agent = staff(session, "Ana Agent", role="agent", available=False)
    hit = scored_post(session, kind=PostKind.SEARCH, manual_only=True, text="escucha: who sells this in Lima?")
    due = utcnow() + timedelta(hours=4)
    task = convert_to_task(session, post_id=hit.id or 0, staff=boss, assignee_id=agent.id or 0, due_at=due,
                           note="Ask sales for the Lima stockist")  # fmt: skip
    post = session.get(Post, hit.id, populate_existing=True)
    assert post is not None and post.status == PostStatus.NO_ACTION
    assert post.resolved_by == f"staff:{boss.id}" and post.resolution_note == f"handled by a task #{task.id}"
    (row,) = list_tasks(session, assignee_id=agent.id)
    assert (row.post_id, row.note, row.created_by_name, row.done_at) == (hit.id, task.note, "Mara Manager", None)
    assert open_task_count(session, assignee_id=agent.id or 0) == 1
    (alert,) = list_alerts(session, staff_id=agent.id or 0)
    assert alert.kind == TASK and alert.post_id == hit.id
    (made,) = _audits(session, "post_converted_to_task")
    assert made.detail["task_id"] == task.id and made.detail["assignee_id"] == agent.id
    # A second conversion of the same post is a conflict, not a second task.
    with pytest.raises(ReplyConflict):
        convert_to_task(session, post_id=hit.id or 0, staff=boss, assignee_id=agent.id or 0, due_at=due)
    done = complete_task(session, task_id=task.id or 0, staff=agent)
    assert done.done_by_id == agent.id and done.done_at is not None
    assert open_task_count(session, assignee_id=agent.id or 0) == 0
    with pytest.raises(ReplyConflict):
        complete_task(session, task_id=task.id or 0, staff=boss)
    assert len(_audits(session, "task_done")) == 1
    assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 1


def test_task_rules_follow_the_permissions_and_bad_input_changes_nothing(session: Session) -> None:
    agent = staff(session, "Ana Agent", role="agent", available=False)
    other = staff(session, "Olga Agent", role="agent", available=False)
    marketing = staff(session, "Noa Marketing", role="marketing", available=False)
    hit = scored_post(session, kind=PostKind.SEARCH, manual_only=True)
    due = utcnow() + timedelta(days=1)
    # Nobody owns it yet: an agent closes only their own posts, so this is not theirs to turn into a task.
    with pytest.raises(NotAllowed):
        convert_to_task(session, post_id=hit.id or 0, staff=agent, assignee_id=other.id or 0, due_at=due)
    hit.assignee_id, hit.status = agent.id, PostStatus.ASSIGNED
    session.add(hit)
    session.commit()
    with pytest.raises(InvalidReply):  # marketing does not work posts
        convert_to_task(session, post_id=hit.id or 0, staff=agent, assignee_id=marketing.id or 0, due_at=due)
    with pytest.raises(InvalidReply):  # a due time in the past
        convert_to_task(session, post_id=hit.id or 0, staff=agent, assignee_id=other.id or 0,
                        due_at=utcnow() - timedelta(hours=2))  # fmt: skip
    with pytest.raises(InvalidReply):
        convert_to_task(session, post_id=hit.id or 0, staff=agent, assignee_id=other.id or 0, due_at=due,
                        note="x\x00y")  # fmt: skip
    with pytest.raises(NotAllowed):
        convert_to_task(session, post_id=hit.id or 0, staff=marketing, assignee_id=other.id or 0, due_at=due)
    assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 0
    post = session.get(Post, hit.id, populate_existing=True)
    assert post is not None and post.status == PostStatus.ASSIGNED
    task = convert_to_task(session, post_id=hit.id or 0, staff=agent, assignee_id=other.id or 0, due_at=due)
    with pytest.raises(NotAllowed):  # an agent marks only their own tasks done
        complete_task(session, task_id=task.id or 0, staff=agent)
    complete_task(session, task_id=task.id or 0, staff=other)


def test_bulk_dismiss_closes_each_once_skips_what_changed_and_refuses_what_is_not_yours(session: Session) -> None:
    boss = staff(session, "Mara Manager", role="manager", senior=True)
    agent = staff(session, "Ana Agent", role="agent", available=False)
    spam = [scored_post(session, text=f"follow me for free coins {i}") for i in range(4)]
    assign_pending(session)
    session.commit()
    seen = _seen(session, *spam)
    # Meanwhile a colleague answers one of them, and another is closed by hand.
    answered, closed = spam[0], spam[1]
    reply_id = session.execute(select(col(Reply.id)).where(col(Reply.post_id) == answered.id)).scalar_one()
    approve_reply(session, reply_id=reply_id, staff=boss, text="Thanks, we will look into it.")
    dismiss_many(session, seen={closed.id or 0: seen[closed.id or 0]}, staff=boss, reason="spam")
    outcome = dismiss_many(session, seen=seen, staff=boss, reason="duplicate", note="same bot again")
    assert outcome == {
        answered.id: Outcome.CHANGED,
        closed.id: Outcome.CLOSED,
        spam[2].id: Outcome.DISMISSED,
        spam[3].id: Outcome.DISMISSED,
    }
    assert session.get(Reply, reply_id, populate_existing=True).state == ReplyState.APPROVED  # type: ignore[union-attr]
    for post in spam[2:]:
        row = session.get(Post, post.id, populate_existing=True)
        assert row is not None and row.status == PostStatus.DISMISSED
        assert row.resolution_note == "duplicate: same bot again"
    reasons = sorted(e.detail["reason"] for e in _audits(session, "post_dismissed"))
    assert reasons == ["duplicate: same bot again", "duplicate: same bot again", "spam"]
    # An agent: the manager's posts are not theirs (refused), their own one is dismissed.
    mine = scored_post(session, text="buy followers now")
    theirs = scored_post(session, text="cheap watches")
    mine.assignee_id, mine.status = agent.id, PostStatus.ASSIGNED
    theirs.assignee_id, theirs.status = boss.id, PostStatus.ASSIGNED
    session.add_all([mine, theirs])
    session.commit()
    outcome = dismiss_many(session, seen=_seen(session, mine, theirs), staff=agent, reason="spam")
    assert outcome == {mine.id: Outcome.DISMISSED, theirs.id: Outcome.NOT_ALLOWED}


def test_bulk_dismiss_a_submitted_answer_since_shown_is_a_change_and_bad_reasons_do_nothing(session: Session) -> None:
    boss = staff(session, "Mara Manager", role="manager", senior=True)
    agent = staff(session, "Ana Agent", role="agent")
    post = scored_post(session, text="is this a bot?")
    assign_pending(session)
    session.commit()
    seen = _seen(session, post)
    reply = session.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
    submit_reply(session, reply_id=reply.id or 0, staff=agent, text="Hi! A person here, how can we help?")
    for reason, note in (("rude", ""), ("other", ""), ("spam", "x" * 2000)):
        with pytest.raises(InvalidReply):
            dismiss_many(session, seen=seen, staff=boss, reason=reason, note=note)
    with pytest.raises(InvalidReply):
        dismiss_many(session, seen={i: Seen(None, None) for i in range(MAX_BULK + 1)}, staff=boss, reason="spam")
    assert dismiss_many(session, seen=seen, staff=boss, reason="spam") == {post.id: Outcome.CHANGED}
    row = session.get(Post, post.id, populate_existing=True)
    assert row is not None and row.status != PostStatus.DISMISSED


def test_bulk_dismiss_never_closes_a_crisis_post(session: Session) -> None:
    boss = staff(session, "Mara Manager", role="manager", senior=True)
    crisis = scored_post(session, crisis=True, urgency=92, text="no quiero vivir sin él, vuestra app me lo quitó")
    noise = scored_post(session, text="follow me for free coins")
    assign_pending(session)
    session.commit()
    outcome = dismiss_many(session, seen=_seen(session, crisis, noise), staff=boss, reason="spam")
    assert outcome == {crisis.id: Outcome.CRISIS, noise.id: Outcome.DISMISSED}
    row = session.get(Post, crisis.id, populate_existing=True)
    assert row is not None and row.status not in (PostStatus.DISMISSED, PostStatus.REPLIED)
    assert [e.post_id for e in _audits(session, "post_dismissed")] == [noise.id]
