"""The responder on SQLite and PostgreSQL: sweep, drafts, approval races and permissions."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.tables import Assignment, AuditEvent, Post, PostStatus, Reply, ReplyState
from responder.actions import (
    InvalidReply,
    ReplyConflict,
    approve_reply,
    dismiss_post,
    reject_reply,
    submit_reply,
)
from responder.assign import assign_pending
from responder.permissions import NotAllowed
from tests.support.factories import scored_post, staff


def test_sweep_assigns_highest_urgency_first_and_respects_capacity(session: Session) -> None:
    ana = staff(session, "Ana Ruiz", capacity=2)
    low = scored_post(session, urgency=10, age_s=5000)
    high = scored_post(session, urgency=90, age_s=10)
    mid_old = scored_post(session, urgency=50, age_s=900)
    mid_new = scored_post(session, urgency=50, age_s=100)
    result = assign_pending(session)
    session.commit()
    assert result.assigned == 2
    assert sorted(result.held) == sorted([low.id, mid_new.id])
    owned = {p.id for p in session.exec(select(Post).where(Post.assignee_id == ana.id)).scalars()}  # type: ignore[call-overload]
    assert owned == {high.id, mid_old.id}
    # Every assignment records who made it, and a suggested reply waits for approval.
    performed = set(session.execute(select(Assignment.performed_by)).scalars())  # type: ignore[call-overload]
    assert performed == {"auto:policy"}
    replies = list(session.exec(select(Reply)).scalars())  # type: ignore[call-overload]
    assert len(replies) == 2 and all(r.state == ReplyState.SUGGESTED for r in replies)
    assert all("Ana" in r.text for r in replies)


def test_spanish_post_gets_a_spanish_speaker_and_a_spanish_draft(session: Session) -> None:
    staff(session, "Sam Carter", languages="en")
    lucia = staff(session, "Lucía Romero", languages="es")
    post = scored_post(session, language="es", text="Llevo tres semanas esperando mi pedido")
    assign_pending(session)
    session.commit()
    session.refresh(post)
    assert post.assignee_id == lucia.id and post.status == PostStatus.ASSIGNED
    reply = session.exec(select(Reply).where(Reply.post_id == post.id)).scalar_one()  # type: ignore[call-overload]
    assert reply.text.startswith("Buenas, ") and "Lucía" in reply.text and "sentimos" in reply.text


def test_crisis_waits_for_a_senior_instead_of_going_to_a_junior(session: Session) -> None:
    staff(session, "Junior Agent")
    post = scored_post(session, crisis=True, urgency=99)
    result = assign_pending(session)
    session.commit()
    assert result.held == [post.id]
    senior = staff(session, "Senior Agent", senior=True)
    assign_pending(session)
    session.commit()
    session.refresh(post)
    assert post.assignee_id == senior.id


def test_keyword_hit_without_mention_gets_a_draft_but_cannot_be_approved(session: Session) -> None:
    boss = staff(session, "Boss", role="manager")
    post = scored_post(session, kind="search", manual_only=True)
    assign_pending(session)
    session.commit()
    reply = session.exec(select(Reply).where(Reply.post_id == post.id)).scalar_one()  # type: ignore[call-overload]
    assert reply.state == ReplyState.DRAFT
    with pytest.raises(InvalidReply, match="by hand"):
        approve_reply(session, reply_id=reply.id, staff=boss)


def _pending_reply(session: Session) -> Reply:
    staff(session, "Agent One")
    scored_post(session)
    assign_pending(session)
    session.commit()
    return session.exec(select(Reply)).scalar_one()  # type: ignore[call-overload, no-any-return]


def test_roles_are_enforced_in_the_functions(session: Session) -> None:
    reply = _pending_reply(session)
    agent = staff(session, "Plain Agent", role="agent")
    marketing = staff(session, "Mark Eting", role="marketing")
    with pytest.raises(NotAllowed):
        approve_reply(session, reply_id=reply.id, staff=agent)
    with pytest.raises(NotAllowed):
        submit_reply(session, reply_id=reply.id, staff=marketing, text="hi")
    # An agent's edit goes back to waiting for approval; it is not sent.
    edited = submit_reply(session, reply_id=reply.id, staff=agent, text="  Edited answer  ")
    assert edited.state == ReplyState.PENDING_APPROVAL and edited.text == "Edited answer"


def test_reject_needs_a_note_and_dismiss_records_who_and_why(session: Session) -> None:
    reply = _pending_reply(session)
    boss = staff(session, "Boss", role="manager")
    # Only a person's submission can be rejected: a suggestion nobody submitted is just edited or left.
    with pytest.raises(ReplyConflict):
        reject_reply(session, reply_id=reply.id, staff=boss, note="not submitted")
    submit_reply(session, reply_id=reply.id, staff=staff(session, "Plain Agent", role="agent"), text="Hola")
    with pytest.raises(InvalidReply):
        reject_reply(session, reply_id=reply.id, staff=boss, note="  ")
    rejected = reject_reply(session, reply_id=reply.id, staff=boss, note="too formal")
    assert rejected.state == ReplyState.REJECTED and rejected.note == "too formal"
    post = dismiss_post(session, post_id=reply.post_id, staff=boss, reason="spam")
    assert post.status == PostStatus.DISMISSED and post.resolved_by == f"staff:{boss.id}"
    actions = set(session.execute(select(AuditEvent.action)).scalars())  # type: ignore[call-overload]
    assert {"reply_rejected", "post_dismissed"} <= actions


def test_x_replies_over_280_characters_are_refused(session: Session) -> None:
    reply = _pending_reply(session)
    boss = staff(session, "Boss", role="manager")
    with pytest.raises(InvalidReply, match="280"):
        approve_reply(session, reply_id=reply.id, staff=boss, text="x" * 281)


def test_two_managers_approving_at_once_one_wins_and_the_other_is_told(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        reply = _pending_reply(s)
        a = staff(s, "Manager A", role="manager")
        b = staff(s, "Manager B", role="manager")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(who: object) -> None:
        with Session(engine, expire_on_commit=False) as s:
            barrier.wait()
            try:
                approve_reply(s, reply_id=reply.id, staff=who)  # type: ignore[arg-type]
                outcomes.append("won")
            except ReplyConflict as exc:
                outcomes.append(f"lost: {exc}")

    threads = [threading.Thread(target=approve, args=(m,)) for m in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(o.split(":")[0] for o in outcomes) == ["lost", "won"]
    assert "already approved by Manager" in next(o for o in outcomes if o.startswith("lost"))
    with Session(engine) as s:
        n = s.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "reply_approved")
        ).scalar_one()
        assert n == 1
