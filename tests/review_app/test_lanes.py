"""A keyword hit's card in the desk: no "approve and send", its own actions instead, in the reader's language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from models.tables import Post, PostKind, PostStatus, Reply
from responder.assign import assign_pending
from review_app.i18n import t
from review_app.launch import APP
from tests.support.desk import TIMEOUT, desk_engine, open_app
from tests.support.factories import scored_post, staff


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file."""
    yield from desk_engine(tmp_path, monkeypatch)


@pytest.mark.parametrize("lang", ["es", "en"])
def test_a_keyword_hit_offers_answered_by_hand_and_not_for_us_instead_of_approve(app_engine: Engine, lang: str) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager")
        hit = scored_post(s, kind=PostKind.SEARCH, manual_only=True, text="escucha just cause 2 is a great game")
        mention = scored_post(s, text="@brand my parcel never arrived")
        s.commit()
        assign_pending(s)
        s.commit()
        replies = {
            p.id: s.execute(select(Reply.id).where(col(Reply.post_id) == p.id)).scalar_one()  # type: ignore[call-overload]
            for p in (hit, mention)
        }
    at = open_app(boss, lang)
    keys = {b.key for b in at.button}
    assert f"approve_{replies[mention.id]}" in keys  # an ordinary post is still approved from its card
    assert f"approve_{replies[hit.id]}" not in keys and f"submit_{replies[hit.id]}" not in keys
    assert {f"by_hand_{hit.id}", f"not_for_us_{hit.id}"} <= keys
    assert at.button(key=f"not_for_us_{hit.id}").label == t(lang, "not_for_us")
    at.text_input(key=f"manual_note_{hit.id}").input("a video game, not our brand").run()
    at.button(key=f"not_for_us_{hit.id}").click().run()
    assert not at.exception
    shown = [m.value for m in [*at.success, *at.warning, *at.error]]
    assert t(lang, "msg_not_for_us", post=hit.id) in shown, shown
    with Session(app_engine) as s:
        closed = s.get(Post, hit.id)
        assert closed is not None and closed.status == PostStatus.DISMISSED
        assert closed.resolution_note == "not for us: a video game, not our brand"
    assert f"not_for_us_{hit.id}" not in {b.key for b in at.button}  # the card left the queue


def test_queue_filters_come_from_the_address_and_go_back_into_it(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", available=False)
        hit = scored_post(s, kind=PostKind.SEARCH, manual_only=True, text="escucha search hit")
        mention = scored_post(s, text="@brand a mention", sentiment="neutral")
        s.commit()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = boss.id
    at.session_state["lang"] = "en"
    # A link to the keyword hits nobody owns, with a value no widget offers (ignored, not an error).
    at.query_params["kind"] = ["search", "no-such-kind"]
    at.query_params["assignee"] = "unassigned"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = {b.key for b in at.button if b.key and b.key.startswith("more_")}
    assert cards == {f"more_{hit.id}"}, cards
    assert at.multiselect(key="queue_kinds_en").value == ["search"]
    # Choosing a filter writes it into the address, so the link in the address bar opens this queue.
    at.multiselect(key="queue_kinds_en").set_value([]).run()
    at.multiselect(key="queue_sentiments_en").set_value(["neutral"]).run()
    shown = {name: [v] if isinstance(v, str) else list(v) for name, v in at.query_params.items()}
    assert shown == {"sentiment": ["neutral"], "assignee": ["unassigned"]}
    cards = {b.key for b in at.button if b.key and b.key.startswith("more_")}
    assert cards == {f"more_{mention.id}"}, cards
