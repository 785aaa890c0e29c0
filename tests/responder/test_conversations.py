"""Conversations at work: one owner, later messages join it, one acknowledgement, one answer closes the case."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.db import make_engine
from models.schema import migrate
from models.store import save_posts
from models.tables import Assignment, Conversation, Note, Post, PostStatus, Reply, ReplyKind, ReplyState
from responder.actions import approve_reply
from responder.conversations import add_note, claim_owner, conversations_of_authors, require_view
from responder.corrections import reassign_post
from responder.outbox import send_approved
from responder.permissions import NotAllowed
from review_app.queries import QueueFilters, fetch_queue
from tests.support.conversations import RecordingSender, answers, dm_conversation, incoming_dm, run_worker_once
from tests.support.db import pg_schema_url
from tests.support.factories import staff

NOTE = "VIP: reported a safety issue last year, NEVER-SEND-THIS-NOTE"


def _posts(engine: Engine, conversation_id: int) -> list[Post]:
    with Session(engine) as s:
        return list(
            s.execute(
                select(Post).where(col(Post.conversation_ref) == conversation_id).order_by(col(Post.created_at))
            ).scalars()
        )


def test_a_dm_conversation_has_one_owner_one_ack_one_card_and_one_answer_closes_it(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm")
        staff(s, "Beto Agent", channels="dm")
        boss = staff(s, "Mara Manager", role="manager", available=False)
    sender = RecordingSender()
    cid = dm_conversation(engine, sender)
    posts = _posts(engine, cid)
    assert len(posts) == 3 and {p.assignee_id for p in posts} == {ana.id}
    with Session(engine) as s:
        conv = s.get(Conversation, cid)
        assert conv is not None and conv.assignee_id == ana.id and conv.status == "open"
        # One assignment for the conversation: the later messages joined its owner.
        assigned = s.execute(
            select(func.count()).where(col(Assignment.post_id).in_([p.id for p in posts]))
        ).scalar_one()
        assert assigned == 1
    # The SLA clock of every message runs from the first one.
    assert len({p.due_at for p in posts}) == 1
    assert [kind for _, kind, _ in sender.sent] == ["dm"] and len(sender.sent) == 1  # one acknowledgement
    # One card, whose reply is the answer to write, not the acknowledgement that went out.
    with Session(engine) as s:
        page = fetch_queue(s, filters=QueueFilters(assignee_id=ana.id))
    assert page.total == 1 and len(page.items) == 1
    card = page.items[0]
    assert (card.post_id, card.conversation_id, card.waiting) == (posts[-1].id, cid, 3)
    assert card.reply_state == ReplyState.SUGGESTED and card.reply_id is not None
    assert card.reply_text and "acuse" not in (card.reply_note or "")

    # A fourth message joins: same owner, no new assignment, no second acknowledgement.
    with Session(engine) as s:
        save_posts(s, [incoming_dm("d9", "¿hola?", author="carla_mx", minutes_ago=1)])
        s.commit()
    run_worker_once(engine, sender)
    posts = _posts(engine, cid)
    assert len(posts) == 4 and {p.assignee_id for p in posts} == {ana.id}
    assert len(sender.sent) == 1
    with Session(engine) as s:
        assert (
            s.execute(select(func.count()).where(col(Assignment.post_id).in_([p.id for p in posts]))).scalar_one() == 1
        )
        page = fetch_queue(s, filters=QueueFilters())
    assert page.total == 1 and page.items[0].post_id == posts[-1].id and page.items[0].waiting == 4

    # The manager approves the answer to the newest message: sent once, and the whole case closes.
    newest = answers(engine, [posts[-1].id])[-1]
    with Session(engine) as s:
        approve_reply(s, reply_id=newest.id, staff=boss, text="Hola Carla, tu pedido sale hoy.")  # type: ignore[arg-type]
    send_approved(engine, {"x": sender})
    assert [text for _, kind, text in sender.sent[1:]] == ["Hola Carla, tu pedido sale hoy."]
    posts = _posts(engine, cid)
    assert {p.status for p in posts} == {PostStatus.REPLIED}
    with Session(engine) as s:
        conv = s.get(Conversation, cid)
        assert conv is not None and (conv.status, conv.first_unanswered_at) == ("closed", None)
        left = s.execute(
            select(func.count()).where(
                col(Reply.post_id).in_([p.id for p in posts]),
                col(Reply.state).in_([ReplyState.SUGGESTED, ReplyState.PENDING_APPROVAL, ReplyState.DRAFT]),
            )
        ).scalar_one()
        assert left == 0
        assert fetch_queue(s, filters=QueueFilters()).total == 0
    send_approved(engine, {"x": sender})
    assert len(sender.sent) == 2  # nothing twice


def test_notes_stay_in_the_desk_and_are_never_sent(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm")
        boss = staff(s, "Mara Manager", role="manager", available=False)
    sender = RecordingSender()
    cid = dm_conversation(engine, sender)
    with Session(engine) as s:
        add_note(s, conversation_id=cid, staff=ana, text=NOTE)
        assert s.execute(select(col(Note.text))).scalars().all() == [NOTE]
    posts = _posts(engine, cid)
    reply = answers(engine, [posts[-1].id])[-1]
    with Session(engine) as s:
        approve_reply(s, reply_id=reply.id, staff=boss, text=None)  # type: ignore[arg-type]
    send_approved(engine, {"x": sender})
    run_worker_once(engine, sender)
    assert len(sender.sent) == 3  # the acknowledgement, the answer and one satisfaction question
    assert not [text for *_, text in sender.sent if "NEVER-SEND" in text]
    with Session(engine) as s:
        assert not s.execute(select(Reply).where(col(Reply.text).contains("NEVER-SEND"))).scalars().all()


def test_agents_open_public_conversations_and_their_own_dms_only(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm")
        beto = staff(s, "Beto Agent", channels="public", available=False)
        boss = staff(s, "Mara Manager", role="manager", available=False)
        marketing = staff(s, "Noa Marketing", role="marketing", available=False)
    cid = dm_conversation(engine, RecordingSender())
    with Session(engine) as s:
        assert require_view(s, conversation_id=cid, staff=ana).id == cid
        assert require_view(s, conversation_id=cid, staff=boss).id == cid
        for outsider in (beto, marketing):
            with pytest.raises(NotAllowed):
                require_view(s, conversation_id=cid, staff=outsider)
            with pytest.raises(NotAllowed):
                add_note(s, conversation_id=cid, staff=outsider, text="a look inside")
        conv = s.get(Conversation, cid)
        assert conv is not None
        conv.kind = "public"
        s.add(conv)
        s.commit()
        assert require_view(s, conversation_id=cid, staff=beto).id == cid
        with pytest.raises(LookupError):
            require_view(s, conversation_id=cid + 999, staff=boss)
        assert [c.id for c in conversations_of_authors(s, [conv.author_id])] == [cid]  # type: ignore[list-item]
        assert conversations_of_authors(s, [conv.author_id])[0].messages == 3  # type: ignore[list-item]
        assert conversations_of_authors(s, []) == []


def test_reassigning_a_message_moves_the_whole_conversation(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm")
        beto = staff(s, "Beto Agent", channels="dm", available=False)
        boss = staff(s, "Mara Manager", role="manager", available=False)
    cid = dm_conversation(engine, RecordingSender())
    first = _posts(engine, cid)[0]
    with Session(engine) as s:
        reassign_post(s, post_id=first.id, staff=boss, to_staff_id=beto.id)  # type: ignore[arg-type]
    assert {p.assignee_id for p in _posts(engine, cid)} == {beto.id}
    with Session(engine) as s:
        conv = s.get(Conversation, cid)
        assert conv is not None and conv.assignee_id == beto.id != ana.id


def test_a_conversation_gets_one_owner_when_two_workers_claim_it_at_once_on_postgresql() -> None:
    with pg_schema_url() as url:
        engine = make_engine(url)
        migrate(engine)
        with Session(engine, expire_on_commit=False) as s:
            ana = staff(s, "Ana Agent")
            beto = staff(s, "Beto Agent")
            save_posts(s, [incoming_dm("x1", "hola", author="c1", minutes_ago=1)])
            s.commit()
            cid = s.execute(select(col(Post.conversation_ref))).scalar_one()
        first, second = Session(engine), Session(engine)
        try:
            assert claim_owner(first, cid, ana.id, expected=None) == ana.id  # type: ignore[arg-type]
            result: list[int | None] = []
            # The second worker's claim waits for the first's row lock, then sees the owner and keeps it.
            waiter = threading.Thread(
                target=lambda: result.append(claim_owner(second, cid, beto.id, expected=None))  # type: ignore[arg-type]
            )
            waiter.start()
            time.sleep(0.5)
            assert waiter.is_alive(), "the second claim must wait for the first one's lock"
            first.commit()
            waiter.join(timeout=10)
            second.commit()
            assert result == [ana.id]
        finally:
            first.close()
            second.close()
        with Session(engine) as s:
            conv = s.get(Conversation, cid)
            assert conv is not None and conv.assignee_id == ana.id
        engine.dispose()


def test_an_acknowledged_reply_kind_is_never_the_card_reply(engine: Engine) -> None:
    """The bug of issue 13: the DM card showed the sent acknowledgement, greyed out, instead of the answer."""
    with Session(engine, expire_on_commit=False) as s:
        staff(s, "Ana Agent", channels="dm")
    sender = RecordingSender()
    with Session(engine) as s:
        save_posts(s, [incoming_dm("solo", "necesito ayuda con mi factura", author="z1", minutes_ago=3)])
        s.commit()
    run_worker_once(engine, sender)
    with Session(engine) as s:
        kinds = [r.kind for r in s.execute(select(Reply).order_by(col(Reply.id))).scalars()]
        item = fetch_queue(s, filters=QueueFilters()).items[0]
    assert kinds == [ReplyKind.ANSWER, ReplyKind.ACK] and len(sender.sent) == 1
    assert item.reply_state == ReplyState.SUGGESTED


def test_the_sweep_leaves_a_busy_conversation_for_the_next_sweep_instead_of_waiting_under_the_team_lock() -> None:
    from models.tables import Score
    from responder.assign import assign_pending

    with pg_schema_url() as url:
        engine = make_engine(url)
        migrate(engine)
        with Session(engine, expire_on_commit=False) as s:
            ana = staff(s, "Ana Agent")
            save_posts(s, [incoming_dm("x1", "mi pedido no llega", author="c1", minutes_ago=1)])
            post = s.execute(select(Post)).scalar_one()
            post.status, post.needs_response, post.urgency = PostStatus.SCORED, True, 60
            s.add(post)
            s.add(Score(post_id=post.id, sentiment="negative", p_negative=0.8, p_neutral=0.1, p_positive=0.1,
                        complaint=0.9, urgency=60, language="es", reasons=[], model_id="test"))  # fmt: skip
            s.commit()
            cid, pid = post.conversation_ref, post.id
        holder = Session(engine)
        try:
            # Another transaction (the outbox refreshing it, a listener storing into it) holds the conversation row.
            holder.execute(select(Conversation).where(col(Conversation.id) == cid).with_for_update()).all()
            with Session(engine) as s:
                started = time.monotonic()
                result = assign_pending(s)
                s.commit()
                assert time.monotonic() - started < 5, "the sweep must not wait for the conversation's row"
            assert result.assigned == 0 and result.busy == [pid] and result.held == []
        finally:
            holder.rollback()
            holder.close()
        with Session(engine) as s:
            again = assign_pending(s)
            s.commit()
            assert again.assigned == 1 and again.busy == []
            conv = s.get(Conversation, cid)
            assert conv is not None and conv.assignee_id == ana.id
            assert s.get(Post, pid).assignee_id == ana.id  # type: ignore[union-attr]


def test_a_sweep_takes_and_gives_its_page_of_conversations_in_two_statements_not_two_per_post() -> None:
    """Issue 17: a statement per post under the team lock was most of a sweep's time on a loaded 2-core machine."""
    from sqlalchemy import event

    from models.tables import Score
    from responder.assign import assign_pending

    with pg_schema_url() as url:
        engine = make_engine(url)
        migrate(engine)
        with Session(engine, expire_on_commit=False) as s:
            team = [staff(s, "Ana Agent", capacity=50), staff(s, "Beto Agent", capacity=50)]
            dms = [incoming_dm(f"x{i}", "mi pedido no llega", author=f"c{i}", minutes_ago=1) for i in range(30)]
            save_posts(s, dms)
            for post in s.execute(select(Post)).scalars():
                post.status, post.needs_response, post.urgency = PostStatus.SCORED, True, 60
                s.add(Score(post_id=post.id, sentiment="negative", p_negative=0.8, p_neutral=0.1, p_positive=0.1,
                            complaint=0.9, urgency=60, language="es", reasons=[], model_id="test"))  # fmt: skip
            s.commit()
        seen: list[str] = []

        def count(conn: object, cursor: object, statement: str, *args: object) -> None:
            if "conversation" in statement.split("WHERE")[0].lower():
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        with Session(engine) as s:
            result = assign_pending(s)
            s.commit()
        event.remove(engine, "before_cursor_execute", count)
        assert result.assigned == 30 and result.busy == []
        touching = [q for q in seen if q.lstrip().upper().startswith(("UPDATE CONVERSATION", "SELECT CONVERSATION"))]
        assert len(touching) == 2, touching  # the page's rows locked in one read, their owners written in one
        with Session(engine) as s:
            conversations = list(s.execute(select(Conversation)).scalars())
            posts = {p.conversation_ref: p.assignee_id for p in s.execute(select(Post)).scalars()}
        assert len(conversations) == 30
        assert all(c.assignee_id in {m.id for m in team} and c.assignee_id == posts[c.id] for c in conversations)


def test_an_owner_given_between_the_claim_and_the_lock_is_the_one_the_post_joins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another worker gives the conversation an owner after this sweep read it ownerless: no second owner."""
    import responder.assign as assign_module
    from models.tables import Score
    from responder.assign import assign_pending

    with pg_schema_url() as url:
        engine = make_engine(url)
        migrate(engine)
        with Session(engine, expire_on_commit=False) as s:
            ana = staff(s, "Ana Agent", capacity=50)
            beto = staff(s, "Beto Agent", capacity=50)
            save_posts(s, [incoming_dm("x1", "mi pedido no llega", author="c1", minutes_ago=1)])
            post = s.execute(select(Post)).scalar_one()
            post.status, post.needs_response, post.urgency = PostStatus.SCORED, True, 60
            s.add(Score(post_id=post.id, sentiment="negative", p_negative=0.8, p_neutral=0.1, p_positive=0.1,
                        complaint=0.9, urgency=60, language="es", reasons=[], model_id="test"))  # fmt: skip
            s.commit()
            cid, pid = post.conversation_ref, post.id
        real = assign_module.lock_free_threads

        def owner_given_first(session: Session, ids: object) -> object:
            # Between this sweep's claim (which read no owner) and its lock, Beto's sweep commits the conversation.
            with Session(engine) as other:
                other.execute(
                    Conversation.__table__.update()  # type: ignore[attr-defined]
                    .where(Conversation.__table__.c.id == cid)  # type: ignore[attr-defined]
                    .values(assignee_id=beto.id)
                )
                other.commit()
            return real(session, ids)  # type: ignore[arg-type]

        monkeypatch.setattr(assign_module, "lock_free_threads", owner_given_first)
        with Session(engine) as s:
            result = assign_pending(s)
            s.commit()
        assert result.assigned == 1 and result.busy == []
        with Session(engine) as s:
            conv = s.get(Conversation, cid)
            assert conv is not None and conv.assignee_id == beto.id  # the owner committed first stays
            assert s.get(Post, pid).assignee_id == beto.id  # type: ignore[union-attr]
            # The post joined Beto's conversation: no assignment of its own to Ana (or anyone).
            given = s.execute(select(col(Assignment.staff_id)).where(col(Assignment.post_id) == pid)).scalars().all()
            assert ana.id not in given and given == []
