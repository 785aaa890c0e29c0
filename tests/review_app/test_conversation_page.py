"""The conversation page: every message in order, the reply box with the answer to write, notes, history, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from models.store import save_posts
from models.tables import Note, Post, Reply, ReplyKind, ReplyState, Staff, utcnow
from networks.base import IncomingAuthor, IncomingPost
from review_app.i18n import t
from review_app.views.conversation import NOTE_KEY
from review_app.views.queue import reply_key
from tests.support.conversations import DM_TEXTS, RecordingSender, answers, dm_conversation, run_worker_once
from tests.support.desk import HOSTILE, VIEWS, desk_engine, open_app
from tests.support.factories import staff

TIMEOUT = 30


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    yield from desk_engine(tmp_path, monkeypatch)


def open_conversation(member: Staff, conversation_id: int | str | None, lang: str = "en") -> AppTest:
    """Run the conversation page as ``member`` on ``/conversation?id=…``."""
    at = AppTest.from_file(str(VIEWS / "conversation.py"), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = member.id
    at.session_state["lang"] = lang
    if conversation_id is not None:
        at.query_params["id"] = str(conversation_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [e.value for e in at.text]


def test_the_owner_sees_every_message_in_order_and_writes_the_answer(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm", ui_language="en")
    sender = RecordingSender()
    cid = dm_conversation(engine, sender)
    ack_text = sender.sent[0][2]
    at = open_conversation(ana, cid)
    shown = texts(at)
    # Three customer messages and our acknowledgement, in time order (the acknowledgement after the last one).
    order = [shown.index(m) for m in (*DM_TEXTS, ack_text)]
    assert order == sorted(order)
    with Session(engine) as s:
        posts = list(s.execute(select(Post).where(col(Post.conversation_ref) == cid)).scalars())
    answer = answers(engine, [max(posts, key=lambda p: p.created_at).id])[-1]  # type: ignore[arg-type,return-value]
    box = at.text_area(key=reply_key(answer.id))  # type: ignore[arg-type]
    assert not box.disabled and box.value == answer.text
    assert at.button(key=f"submit_{answer.id}") is not None
    assert not [b for b in at.button if b.key == f"approve_{answer.id}"], "approving is for managers"
    box.set_value("Hola Carla, te escribo con la fecha de entrega.")
    at.button(key=f"submit_{answer.id}").click().run()
    assert not at.exception
    with Session(engine) as s:
        stored = s.get(Reply, answer.id)
        assert stored is not None and stored.state == ReplyState.PENDING_APPROVAL
        assert stored.text == "Hola Carla, te escribo con la fecha de entrega."
    assert [m.value for m in at.success]  # the message shows on the page that was acted on
    # Internal notes: stored, shown, and only the team's.
    at.text_area(key=NOTE_KEY).set_value("Cliente VIP, ya escribió en octubre")
    at.button(key="conv_note_add").click().run()
    assert not at.exception
    assert "Cliente VIP, ya escribió en octubre" in texts(at)
    with Session(engine) as s:
        assert [n.staff_id for n in s.execute(select(Note)).scalars()] == [ana.id]
    history = " ".join(m.value for m in at.markdown)
    assert "assigned" in history and "reply submitted for approval" in history and "acknowledgement queued" in history


def test_refusals_missing_and_unknown_conversations(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        staff(s, "Ana Agent", channels="dm")
        beto = staff(s, "Beto Agent", channels="public", available=False)
        boss = staff(s, "Mara Manager", role="manager", available=False)
    cid = dm_conversation(engine, RecordingSender())
    at = open_conversation(beto, cid)
    assert [w.value for w in at.warning] == [t("en", "conv_not_allowed")]
    assert not set(DM_TEXTS) & set(texts(at))
    assert [i.value for i in open_conversation(boss, None).info] == [t("en", "conv_missing")]
    assert [i.value for i in open_conversation(boss, "99999").info] == [t("en", "conv_not_found", id=99999)]
    assert [i.value for i in open_conversation(boss, "1; DROP TABLE post").info] == [t("en", "conv_missing")]
    manager_view = open_conversation(boss, cid, lang="es")
    assert set(DM_TEXTS) <= set(texts(manager_view))
    assert any(b.key and b.key.startswith("approve_") for b in manager_view.button)


def _tweet(external_id: str, text: str, *, author: str | None, kind: str = "mention", reply_to: str | None = None,
           root: str = "t0", minutes_ago: float = 10) -> IncomingPost:  # fmt: skip
    who = IncomingAuthor(network="x", external_id=author, username=author) if author else None
    return IncomingPost(
        network="x", external_id=external_id, kind=kind, source="mentions", text=text,
        created_at=utcnow() - timedelta(minutes=minutes_ago), author=who, conversation_id=root,
        in_reply_to_external_id=reply_to,
    )  # fmt: skip


def test_an_x_reply_chain_shows_its_parents_a_missing_one_as_a_gap_and_hostile_text_inert(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", senior=True)
        save_posts(s, [
            # t0 (deleted, never stored) <- b1 (the brand's tweet) <- c1 <- c2 (the customer's replies)
            _tweet("b1", "Hoy cambiamos el horario de la tienda", author="brand", kind="own", reply_to="t0",
                   minutes_ago=30),
            _tweet("c1", HOSTILE, author="pepe", reply_to="b1", minutes_ago=20),
            _tweet("c2", "x" * 20_000, author="pepe", reply_to="c1", minutes_ago=10),
            _tweet("u1", "¿y mi pedido?", author=None, reply_to="b1", minutes_ago=5),
        ])  # fmt: skip
        s.commit()
    run_worker_once(engine, RecordingSender())
    with Session(engine) as s:
        by_ext = {p.external_id: p for p in s.execute(select(Post)).scalars()}
    cid = by_ext["c1"].conversation_ref
    assert cid is not None and by_ext["c2"].conversation_ref == cid
    assert by_ext["u1"].conversation_ref not in (None, cid)
    at = open_conversation(boss, cid)
    shown = texts(at)
    assert shown.index("Hoy cambiamos el horario de la tienda") < shown.index(HOSTILE) < shown.index("x" * 20_000)
    assert [w.value for w in at.warning] == [t("en", "conv_gap", id="t0")]
    # Hostile text goes out as plain text; nothing from the network reaches markdown unescaped.
    assert not [m.value for m in at.markdown if "<script>" in m.value or "](http" in m.value]
    unknown = open_conversation(boss, by_ext["u1"].conversation_ref)
    assert "¿y mi pedido?" in texts(unknown)
    assert t("en", "conv_unknown_author") in " ".join(m.value for m in unknown.markdown)


def test_a_card_links_to_its_conversation_in_the_whole_app(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm")
    cid = dm_conversation(engine, RecordingSender())
    at = open_app(ana)
    at.switch_page("views/inbox.py").run()
    assert not at.exception
    links = [e for e in at.get("page_link") if "conversation" in str(e.proto.page)]
    assert len(links) == 1 and f"id={cid}" in str(links[0].proto.query_string)
    # The card shows the answer to write, not the acknowledgement.
    with Session(engine) as s:
        kinds = {r.kind for r in s.execute(select(Reply)).scalars()}
    assert kinds == {ReplyKind.ANSWER, ReplyKind.ACK}
    assert not [a for a in at.text_area if a.disabled]


def test_the_page_speaks_only_the_chosen_language_and_shows_no_raw_codes(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        staff(s, "Ana Agent", channels="dm")
        boss = staff(s, "Mara Manager", role="manager", available=False)
    cid = dm_conversation(engine, RecordingSender())
    at = open_conversation(boss, cid, lang="es")
    with Session(engine) as s:
        reply = s.execute(select(Reply).where(col(Reply.kind) == ReplyKind.ACK)).scalar_one()
    shown = " ".join(
        [m.value for m in at.markdown] + [c.value for c in at.caption] + [h.value for h in at.subheader]
        + [b.label for b in at.button] + [a.label for a in at.text_area]
    )  # fmt: skip
    raw = ("pending_approval", "joined_conversation", "ack_queued", "reply_submitted", "conv_", "public", "closed")
    assert not [code for code in raw if code in shown]
    english = ("customer", "acknowledgement", "Messages", "Internal notes", "Case history", "owner", "assigned")
    assert not [word for word in english if word in shown], shown
    assert "cliente" in shown and "acuse de recibo" in shown and "Historia del caso" in shown
    assert reply.text in texts(at)


def test_the_queue_shows_an_agent_no_dm_given_to_someone_else(engine: Engine) -> None:
    """A private thread is for its owner: another agent's queue leaves it out; a manager's queue shows it."""
    from review_app.queries import QueueFilters, fetch_queue
    from review_app.views.queue import dms_filter

    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm", ui_language="en")
        beto = staff(s, "Beto Agent", channels="public", available=False, ui_language="en")
        boss = staff(s, "Mara Manager", role="manager", available=False, ui_language="en")
    dm_conversation(engine, RecordingSender())
    with Session(engine) as s:

        def shown(member: Staff) -> list[str]:
            return [i.text for i in fetch_queue(s, filters=QueueFilters(dms_of=dms_filter(member))).items]

        assert dms_filter(boss) is None
        assert any(text in DM_TEXTS for text in shown(ana))
        assert any(text in DM_TEXTS for text in shown(boss))
        assert not [text for text in shown(beto) if text in DM_TEXTS]


def test_the_customer_page_shows_an_agent_no_dm_given_to_someone_else(engine: Engine) -> None:
    """The customer page follows the queue's rule: another agent does not read the owner's DMs there either."""
    from models.customers import customer_of_author
    from review_app.customer_data import load_customer
    from review_app.views.queue import dms_filter

    with Session(engine, expire_on_commit=False) as s:
        ana = staff(s, "Ana Agent", channels="dm", ui_language="en")
        beto = staff(s, "Beto Agent", channels="public", available=False, ui_language="en")
    dm_conversation(engine, RecordingSender())
    with Session(engine) as s:
        author_id = s.execute(select(col(Post.author_id)).where(col(Post.kind) == "dm")).scalars().first()
        assert author_id is not None
        customer_id = customer_of_author(s, author_id)
        s.commit()

        def shown(member: Staff) -> list[str]:
            page = load_customer(s, customer_id, with_suggestions=False, dms_of=dms_filter(member))
            assert page is not None
            return [m.text for c in page.conversations for m in c.messages]

        assert set(DM_TEXTS) <= set(shown(ana))
        assert not set(DM_TEXTS) & set(shown(beto))
