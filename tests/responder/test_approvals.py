"""Approvals: a suggestion is not a submission; several answers approved at once are each sent exactly once."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.db import make_engine
from models.schema import migrate
from models.tables import Reply, ReplyState
from responder.actions import approve_reply, decide_many, submit_reply
from responder.assign import assign_pending
from review_app.approval_queries import count_waiting, my_submissions, waiting_for_approval
from tests.support.desk import FakeSender
from tests.support.factories import scored_post, staff


def test_machine_suggestions_never_wait_for_approval_only_submissions_do(session: Session) -> None:
    agent = staff(session, "Ana Agent")
    low_post = scored_post(session, urgency=20)
    high_post = scored_post(session, urgency=80)
    assign_pending(session)
    session.commit()
    by_post = {r.post_id: r for r in session.execute(select(Reply)).scalars()}
    low, high = by_post[low_post.id or 0], by_post[high_post.id or 0]
    assert low.state == high.state == ReplyState.SUGGESTED and low.submitted_by_id is None
    assert count_waiting(session) == 0 and waiting_for_approval(session) == []
    submit_reply(session, reply_id=low.id or 0, staff=agent, text="Sorry! Your parcel left today.")
    submit_reply(session, reply_id=high.id or 0, staff=agent, text=high.text)
    items = waiting_for_approval(session)
    # Most urgent first; who wrote it, the suggestion it started from and the customer's words come with it.
    assert [i.reply_id for i in items] == [high.id, low.id]
    assert items[1].author_name == "Ana Agent" and items[1].suggested_text == low.suggested_text
    assert items[1].text == "Sorry! Your parcel left today." and items[1].customer_text == "my order never arrived"
    assert [s.state for s in my_submissions(session, staff_id=agent.id or 0)] == [ReplyState.PENDING_APPROVAL] * 2


def test_bulk_approval_reports_who_got_there_first_and_the_outbox_sends_each_once(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        agent = staff(session, "Ana Agent")
        boss = staff(session, "Mara Boss", role="manager", available=False)
        other = staff(session, "Nico Boss", role="manager", available=False)
        for _ in range(3):
            scored_post(session)
        assign_pending(session)
        session.commit()
        ids = [r.id or 0 for r in session.execute(select(Reply).order_by(col(Reply.id))).scalars()]
        for rid in ids:
            submit_reply(session, reply_id=rid, staff=agent, text=f"Answer {rid}")
        approve_reply(session, reply_id=ids[0], staff=other)  # a colleague approved one meanwhile
        outcome = decide_many(session, reply_ids=[*ids, ids[1]], staff=boss, approve=True, note="good")
        assert outcome[ids[1]] is None and outcome[ids[2]] is None
        assert outcome[ids[0]] is not None and "already approved by Nico Boss" in outcome[ids[0]]
    sender = FakeSender()
    from responder.outbox import send_approved

    send_approved(engine, {"x": sender})
    send_approved(engine, {"x": sender})
    assert sorted(sender.sent) == sorted(f"Answer {rid}" for rid in ids)
    with Session(engine) as session:
        rows = {r.id: r for r in session.execute(select(Reply)).scalars()}
        assert all(rows[rid].state == ReplyState.SENT for rid in ids)
        assert rows[ids[1]].note == "good" and rows[ids[1]].approved_by_id == boss.id


def test_migration_backfills_suggestions_and_submissions(db_url: str) -> None:
    """Before 0015 every machine draft was pending approval; after it, only what a person submitted is."""
    eng = make_engine(db_url)
    migrate(eng, "0008")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO staff (name, email, role, languages, channels, senior, capacity, available, "
                          "created_at, failed_logins, ui_language, skills, disabled) VALUES ('Ana', 'ana@x', 'agent', "
                          "'es', 'public', false, 5, true, CURRENT_TIMESTAMP, 0, 'es', '', false)"))  # fmt: skip
        conn.execute(text("INSERT INTO post (network, external_id, kind, source, text, is_public, manual_only, "
                          "created_at, ingested_at, status) VALUES ('x', 'p1', 'mention', 't', 'hola', true, false, "
                          "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'assigned')"))  # fmt: skip
        for rid, state in ((1, "pending_approval"), (2, "pending_approval"), (3, "sent")):
            conn.execute(text("INSERT INTO reply (id, post_id, kind, state, text, suggested_text, idempotency_key, "
                              "author_staff_id, attempts, created_at, updated_at) VALUES (:id, 1, 'answer', :state, "
                              "'t', 't', :key, 1, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                         {"id": rid, "state": state, "key": f"k{rid}"})  # fmt: skip
        for rid in (2, 3):
            submitted = ("INSERT INTO auditevent (at, actor, action, post_id, reply_id, detail) VALUES "
                         "(CURRENT_TIMESTAMP, 'staff:1', 'reply_submitted', 1, :rid, '{}')")  # fmt: skip
            conn.execute(text(submitted), {"rid": rid})
        conn.execute(text("INSERT INTO alert (key, kind, staff_id, message, created_at) VALUES "
                          "('old', 'breach', 1, 'm', CURRENT_TIMESTAMP)"))  # fmt: skip
    migrate(eng)
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT id, state, submitted_by_id FROM reply ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "suggested", None), (2, "pending_approval", 1), (3, "sent", 1)]
        assert conn.execute(text("SELECT pushed_at IS NOT NULL, push_attempts FROM alert")).one() == (True, 0)
    eng.dispose()
