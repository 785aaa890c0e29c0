"""The customer page in the app: both histories after a link, restored by unlink, audited; suggestions wait for
a click; tags and notes; hostile names inert; the queue card links to the page and counts an order's mentions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from models.tables import (
    Author,
    CustomerLink,
    CustomerNote,
    Post,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Satisfaction,
    Staff,
    utcnow,
)
from review_app.i18n import t
from tests.support.customers import Person, store_person
from tests.support.desk import HOSTILE, TIMEOUT, VIEWS, desk_engine, user


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file."""
    yield from desk_engine(tmp_path, monkeypatch)


def _page(member: Staff, **params: int) -> AppTest:
    at = AppTest.from_file(str(VIEWS / "customer.py"), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = member.id
    at.session_state["lang"] = "en"
    for key, value in params.items():
        at.query_params[key] = str(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> set[str]:
    return {el.value for el in at.text}


def _person(engine: Engine, **names: str) -> Person:
    with Session(engine, expire_on_commit=False) as s:
        return store_person(s, **names)


def test_linking_from_a_suggestion_shows_both_histories_and_unlinking_restores_them(app_engine: Engine) -> None:
    marta = user(app_engine, "Marta Agent", "agent")
    p = _person(app_engine)
    at = _page(marta, id=p.x_customer)
    assert "@brand my order #5521 never arrived" in _texts(at)
    assert "Pedido #5521: nadie me responde en X" not in _texts(at)
    # Suggested with its evidence, and not linked until the click.
    assert at.button(key=f"link_{p.fb_author}")
    with Session(app_engine) as s:
        assert s.execute(select(func.count()).select_from(CustomerLink)).scalar_one() == 0

    at.button(key=f"link_{p.fb_author}").click().run()
    assert not at.exception
    assert {"@brand my order #5521 never arrived", "Pedido #5521: nadie me responde en X"} <= _texts(at)
    assert any(t("en", "customer_wrote_about", n=3, ref="5521") in m.value for m in at.markdown)
    with Session(app_engine) as s:
        row = s.execute(select(CustomerLink)).scalar_one()
        assert (row.action, row.staff_id, row.author_id, row.to_customer_id) == (
            "link",
            marta.id,
            p.fb_author,
            p.x_customer,
        )
        assert "order #5521" in row.basis

    at.button(key=f"unlink_{p.fb_author}").click().run()
    assert not at.exception
    assert "Pedido #5521: nadie me responde en X" not in _texts(at)
    assert "@brand my order #5521 never arrived" in _texts(at)
    fb_page = _page(marta, id=p.fb_customer)
    assert "Pedido #5521: nadie me responde en X" in _texts(fb_page)
    assert "@brand my order #5521 never arrived" not in _texts(fb_page)
    with Session(app_engine) as s:
        actions = s.execute(select(col(CustomerLink.action), col(CustomerLink.staff_id))).all()
        assert sorted(actions) == [("link", marta.id), ("unlink", marta.id)]


def test_notes_and_tags_are_kept_for_staff_and_never_become_replies(app_engine: Engine) -> None:
    lucia = user(app_engine, "Lucia Manager", "manager")
    p = _person(app_engine)
    at = _page(lucia, id=p.x_customer)
    at.text_input(key="customer_new_tag").input("VIP")
    at.button(key="customer_tag_add").click().run()
    at.text_area(key="customer_new_note").input("Reported a gas smell at the store; call back")
    at.button(key="customer_note_add").click().run()
    assert not at.exception
    assert "Reported a gas smell at the store; call back" in _texts(at)
    assert any("VIP" in m.value for m in at.markdown)
    with Session(app_engine) as s:
        assert s.execute(select(col(CustomerNote.text))).scalar_one() == "Reported a gas smell at the store; call back"
        assert s.execute(select(func.count()).select_from(Reply)).scalar_one() == 0


def test_marketing_is_refused_and_sees_nothing(app_engine: Engine) -> None:
    noa = user(app_engine, "Noa Marketing", "marketing")
    p = _person(app_engine)
    at = _page(noa, id=p.x_customer)
    assert [i.value for i in at.info] == [t("en", "customer_not_allowed")]
    assert not at.text and not at.button


def test_hostile_names_and_texts_render_inert(app_engine: Engine) -> None:
    ana = user(app_engine, "Ana Agent", "agent")
    p = _person(app_engine, x_name=HOSTILE, fb_name=HOSTILE)
    with Session(app_engine) as s:
        s.execute(update(Author).where(col(Author.id) == p.x_author).values(username="**evil**<b>"))
        s.execute(update(Post).where(col(Post.id) == p.x_posts[0]).values(text=HOSTILE))
        s.commit()
    at = _page(ana, id=p.x_customer)
    assert HOSTILE in _texts(at)  # shown literally, as text
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.label for e in at.expander]
    assert shown and not any("<script>" in v or "<b>" in v or "](http://evil)" in v for v in shown)
    # Same name on both sides: still only a suggestion.
    assert at.button(key=f"link_{p.fb_author}")


def test_the_queue_card_links_to_the_customer_and_counts_their_order_mentions(app_engine: Engine) -> None:
    lucia = user(app_engine, "Lucia Manager", "manager")
    p = _person(app_engine)
    with Session(app_engine) as s:
        s.execute(
            update(Post)
            .where(col(Post.id).in_(p.x_posts + p.fb_posts))
            .values(needs_response=True, status=PostStatus.SCORED, urgency=50)
        )
        s.commit()
    at = AppTest.from_file(str(VIEWS / "queue.py"), default_timeout=TIMEOUT)
    at.session_state["staff_id"], at.session_state["lang"] = lucia.id, "en"
    at.run()
    assert not at.exception
    links = [el.proto.url for el in at.get("link_button")]
    assert f"customer?id={p.x_customer}" in links and f"customer?id={p.fb_customer}" in links
    assert any(t("en", "customer_card_refs", n=2, ref="5521") in m.value for m in at.markdown)


def test_search_finds_a_person_by_handle_and_refuses_nothing_it_cannot_store(app_engine: Engine) -> None:
    ana = user(app_engine, "Ana Agent", "agent")
    p = _person(app_engine)
    at = _page(ana)
    assert [i.value for i in at.info] == [t("en", "customer_pick")]
    at.text_input(key="customer_search").input("carlos_mx").run()
    assert not at.exception
    assert any(f"customer?id={p.x_customer}" in m.value for m in at.markdown)
    for odd in ("\x00", "%", "_"):
        at.text_input(key="customer_search").input(odd).run()
        assert not at.exception
    at.text_input(key="customer_search").input("%").run()
    assert not any("customer?id=" in m.value for m in at.markdown)


def test_each_answer_shows_the_rating_its_customer_gave_on_that_questions_scale(app_engine: Engine) -> None:
    lucia = user(app_engine, "Lucia Manager", "manager")
    p = _person(app_engine)
    # The mention was asked the 1–5 question, the DM the promoter one (0–10, an admin's switch), one not answered.
    asked = {p.x_posts[0]: (4, 5), p.x_posts[1]: (9, 10), p.x_posts[2]: (None, 5)}
    with Session(app_engine) as s:
        for post_id, (score, scale) in asked.items():
            answer = Reply(post_id=post_id, kind=ReplyKind.ANSWER, state=ReplyState.SENT, text=f"answer {post_id}",
                           idempotency_key=f"answer-{post_id}", sent_at=utcnow())  # fmt: skip
            s.add(answer)
            s.add(Satisfaction(post_id=post_id, scale=scale, score=score, answered_at=utcnow() if score else None))
        s.commit()
    at = _page(lucia, id=p.x_customer)
    rating = t("en", "customer_csat")
    (frame,) = [df.value for df in at.dataframe if rating in df.value.columns]
    shown = dict(zip(frame.iloc[:, 2], frame[rating], strict=True))
    assert shown == {f"answer {p.x_posts[0]}": "4/5", f"answer {p.x_posts[1]}": "9/10", f"answer {p.x_posts[2]}": "—"}
