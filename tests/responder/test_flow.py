"""Approval flow, provenance, customer care messages and the status report, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.tables import (
    Author,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Satisfaction,
    SlaEvent,
    utcnow,
)
from networks.base import SentReply
from responder.actions import InvalidReply, ReplyConflict, approve_reply, escalate_post, submit_reply
from responder.assign import assign_pending
from responder.care import CareOptions, care_sweep, parse_rating
from responder.outbox import send_approved
from responder.report import responder_status
from tests.support.factories import scored_post, staff


class FakeSender:
    """A network that accepts every reply and remembers it."""

    network = "x"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        self.sent.append((external_id, text))
        return SentReply(external_id=f"r{len(self.sent)}")


def _answer(session: Session, post: Post) -> Reply:
    return session.execute(
        select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == ReplyKind.ANSWER)
    ).scalar_one()


def test_two_pending_replies_for_one_post_are_flagged(session: Session) -> None:
    staff(session, "Ana Ruiz")
    agent = staff(session, "Other Agent")
    post = scored_post(session)
    assign_pending(session)
    session.commit()
    extra = Reply(post_id=post.id, state=ReplyState.DRAFT, text="draft", idempotency_key="extra")  # type: ignore[arg-type]
    session.add(extra)
    session.commit()
    submit_reply(session, reply_id=extra.id, staff=agent, text="My answer")  # type: ignore[arg-type]
    flags = {r.flag for r in session.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalars()}
    assert len(flags) == 1 and "another reply to this post is pending" in (flags.pop() or "")
    assert responder_status(session)["duplicate_pending_posts"] == 1


def test_sent_reply_keeps_its_provenance(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Ana Ruiz")
        boss = staff(session, "Boss Lady", role="manager", channels="")
        post = scored_post(session)
        assign_pending(session)
        session.commit()
        reply = _answer(session, post)
        approve_reply(session, reply_id=reply.id, staff=boss, text=reply.text + " Thanks!")  # type: ignore[arg-type]
    sender = FakeSender()
    assert [o.result for o in send_approved(engine, {"x": sender})] == ["sent"]
    with Session(engine) as session:
        sent = session.get(Reply, reply.id)
        assert sent is not None and sent.state == ReplyState.SENT and sent.provenance is not None
        prov = sent.provenance
        assert prov["model_id"] == "test-model" and prov["scores"]["complaint"] == 0.8
        assert prov["suggested_text"] == reply.suggested_text and prov["edited"] is True
        assert prov["diff"] == "+Thanks!" and prov["approved_by"] == "Boss Lady" and prov["approved_at"]


def test_escalated_post_is_closed_with_reason_and_who(session: Session) -> None:
    agent = staff(session, "Ana Ruiz")
    post = scored_post(session)
    assign_pending(session)
    session.commit()
    with pytest.raises(InvalidReply):
        escalate_post(session, post_id=post.id, staff=agent, reason=" ")  # type: ignore[arg-type]
    done = escalate_post(session, post_id=post.id, staff=agent, reason="legal team")  # type: ignore[arg-type]
    assert done.status == PostStatus.ESCALATED and done.resolved_by == f"staff:{agent.id}"
    assert _answer(session, post).state == ReplyState.REJECTED
    with pytest.raises(ReplyConflict):
        escalate_post(session, post_id=post.id, staff=agent, reason="again")  # type: ignore[arg-type]
    assert responder_status(session)["unresolved"] == 0


def test_status_reports_every_post_needing_a_response_that_has_not_ended(session: Session) -> None:
    staff(session, "English Only", languages="en")
    held = scored_post(session, language="es")
    owned = scored_post(session)
    assign_pending(session)
    session.commit()
    report = responder_status(session)
    assert report["unresolved"] == 2 and set(report["unresolved_post_ids"]) == {held.id, owned.id}
    assert report["holding"] == 1


def _dm(session: Session, **kw: object) -> Post:
    return scored_post(session, kind=PostKind.DM, complaint=0.2, sentiment="neutral", **kw)  # type: ignore[arg-type]


def test_dm_gets_an_acknowledgement_naming_the_agent_and_the_time(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Camila Torres")
        post = _dm(session, language="es")
        assign_pending(session)
        session.commit()
        first = care_sweep(session, options=CareOptions())
        again = care_sweep(session, options=CareOptions())
        session.commit()
        assert first.acks == [post.id] and again.acks == []
        ack = session.execute(select(Reply).where(col(Reply.kind) == ReplyKind.ACK)).scalar_one()
        assert ack.state == ReplyState.APPROVED and "Camila" in ack.text and "hemos recibido" in ack.text
        session.refresh(post)
        assert post.promised_at is not None
    sender = FakeSender()
    send_approved(engine, {"x": sender})
    with Session(engine) as session:
        # The ack went out, and the post still waits for its real answer.
        assert len(sender.sent) == 1 and session.get(Post, post.id).status == PostStatus.ASSIGNED  # type: ignore[union-attr]


def test_a_slipped_promise_sends_an_update_and_records_it(session: Session) -> None:
    staff(session, "Priya Shah", languages="en")
    post = _dm(session)
    assign_pending(session)
    care_sweep(session, options=CareOptions())
    session.commit()
    session.refresh(post)
    later = post.promised_at.replace(tzinfo=utcnow().tzinfo) + timedelta(minutes=1)  # type: ignore[union-attr]
    result = care_sweep(session, options=CareOptions(), now=later)
    session.commit()
    assert result.updates == [post.id]
    update = session.execute(select(Reply).where(col(Reply.kind) == ReplyKind.UPDATE)).scalar_one()
    assert "taking longer" in update.text and "Priya" in update.text
    assert session.execute(select(SlaEvent.kind)).scalars().all() == ["promise_slipped"]  # type: ignore[call-overload]
    assert care_sweep(session, options=CareOptions(), now=later).updates == []


def test_satisfaction_question_after_resolution_and_the_answer_is_stored(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Priya Shah", languages="en")
        boss = staff(session, "Boss Lady", role="manager", channels="")
        post = _dm(session)
        assign_pending(session)
        session.commit()
        approve_reply(session, reply_id=_answer(session, post).id, staff=boss)  # type: ignore[arg-type]
    send_approved(engine, {"x": FakeSender()})
    with Session(engine, expire_on_commit=False) as session:
        asked = care_sweep(session, options=CareOptions(ack_dms=False, satisfaction=True))
        session.commit()
        assert asked.surveys == [post.id]
        # The customer answers "4" in the same DM thread: stored as a rating, not as new work.
        answer = Post(network="x", external_id="answer-1", kind=PostKind.DM, source="test", author_id=post.author_id,
                      text=" 4 ", created_at=utcnow(), needs_response=True, status=PostStatus.SCORED)  # fmt: skip
        session.add(answer)
        session.commit()
        got = care_sweep(session, options=CareOptions(ack_dms=False, satisfaction=True))
        session.commit()
        assert got.answers == [answer.id] and got.surveys == []
        row = session.execute(select(Satisfaction)).scalar_one()
        assert row.score == 4 and row.answer_post_id == answer.id
        session.refresh(answer)
        assert answer.status == PostStatus.NO_ACTION and answer.needs_response is False
        assert session.get(Author, post.author_id) is not None


def test_parse_rating() -> None:
    texts = ("5", " 3/5", "4.", "10", "five", "2 stars", "2 days and no answer", "my order 12345")
    assert [parse_rating(t) for t in texts] == [5, 3, 4, None, 5, 2, None, None]
