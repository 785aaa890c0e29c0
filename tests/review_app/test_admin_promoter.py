"""The promoter switch on the Admin page, in Spanish and English: shown with the environment's value until an
admin saves it, stored in the database, and the satisfaction question the worker then asks follows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from ground.settings import get_settings
from models.tables import PostKind, Reply, ReplyKind, Satisfaction, Staff
from networks.base import SentReply
from responder.actions import approve_reply
from responder.assign import assign_pending
from responder.care import care_sweep
from responder.csat import PROMOTER, SATISFACTION
from responder.outbox import send_approved
from responder.promoter import PROMOTER_KEY, promoter_chosen, promoter_mode
from review_app.i18n import t
from tests.support.desk import desk_engine, open_app, run_view
from tests.support.factories import scored_post, staff
from worker.scheduler import care_options


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file."""
    monkeypatch.delenv("ESCUCHA_SATISFACTION_PROMOTER", raising=False)
    yield from desk_engine(tmp_path, monkeypatch)


def _admin_page(engine: Engine, lang: str) -> tuple[AppTest, Staff]:
    with Session(engine, expire_on_commit=False) as s:
        admin = staff(s, "Alex Admin", role="admin", available=False, ui_language=lang)
    at = open_app(admin, lang)
    at.switch_page("views/admin.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at, admin


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _ask_after_an_answer(engine: Engine) -> tuple[int, str]:
    """Answer a new customer's DM, send it, run the care sweep as the worker does; the question asked."""
    with Session(engine, expire_on_commit=False) as s:
        staff(s, "Priya Shah", languages="en")
        boss = staff(s, "Boss Lady", role="manager", channels="")
        post = scored_post(s, kind=PostKind.DM)  # the question goes to private conversations
        assign_pending(s)
        s.commit()
        reply = s.execute(
            select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == ReplyKind.ANSWER)
        ).scalar_one()
        approve_reply(s, reply_id=reply.id, staff=boss)  # type: ignore[arg-type]

    class Network:
        def send_reply(self, **_: object) -> SentReply:
            return SentReply(external_id=f"sent-{post.id}")

    send_approved(engine, {"x": Network()})
    with Session(engine, expire_on_commit=False) as s:
        care_sweep(s, options=care_options(get_settings()))  # the worker's options: the environment's default
        s.commit()
        row = s.execute(select(Satisfaction).where(col(Satisfaction.post_id) == post.id)).scalar_one()
        question = s.get(Reply, row.reply_id)
        assert question is not None
        return row.scale, question.text


@pytest.mark.parametrize("lang", ["es", "en"])
def test_an_admin_switches_the_promoter_question_on_and_the_worker_asks_it(app_engine: Engine, lang: str) -> None:
    at, _ = _admin_page(app_engine, lang)
    assert t(lang, "admin_survey") in [h.value for h in at.subheader]
    switch = at.toggle(key=PROMOTER_KEY)
    assert switch.label == t(lang, "admin_promoter") and switch.value is False  # the environment's default
    assert t(lang, "admin_promoter_now_survey") in _captions(at)
    assert t(lang, "admin_promoter_from_env", variable="ESCUCHA_SATISFACTION_PROMOTER") in _captions(at)

    switch.set_value(True)
    at.button(key="save_promoter").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert t(lang, "msg_saved") in [s.value for s in at.success]
    with Session(app_engine) as s:
        assert promoter_chosen(s) and promoter_mode(s, default=False) is True
    assert at.toggle(key=PROMOTER_KEY).value is True
    assert t(lang, "admin_promoter_now_promoter") in _captions(at)
    assert not [c for c in _captions(at) if "ESCUCHA_SATISFACTION_PROMOTER" in c]  # chosen here now

    scale, text = _ask_after_an_answer(app_engine)
    assert scale == PROMOTER and "recommend us" in text


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_environment_shows_until_an_admin_switches_it_off(
    app_engine: Engine, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    monkeypatch.setenv("ESCUCHA_SATISFACTION_PROMOTER", "true")
    get_settings.cache_clear()
    at, _ = _admin_page(app_engine, lang)
    assert at.toggle(key=PROMOTER_KEY).value is True
    assert t(lang, "admin_promoter_now_promoter") in _captions(at)

    at.toggle(key=PROMOTER_KEY).set_value(False)
    at.button(key="save_promoter").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with Session(app_engine) as s:
        assert promoter_mode(s, default=True) is False
    assert t(lang, "admin_promoter_now_survey") in _captions(at)

    scale, text = _ask_after_an_answer(app_engine)
    assert scale == SATISFACTION and "1 (poor) to 5 (excellent)" in text  # the admin's "off" beats the environment


def test_a_manager_cannot_reach_the_switch(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        manager = staff(s, "Mara Manager", role="manager")
    at = run_view("admin.py", manager)  # the page itself, as if opened by its address (not in her navigation)
    assert [i.value for i in at.info] == [t("en", "admin_not_allowed")]
    assert len(at.toggle) == 0 and len(at.button) == 0  # refused before any widget
    with Session(app_engine) as s:
        assert not promoter_chosen(s)
