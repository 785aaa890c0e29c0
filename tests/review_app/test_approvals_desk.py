"""The desk's approvals, submissions, notifications and full-team banner, driven through Streamlit's AppTest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.tables import ReplyState, Staff
from responder.actions import submit_reply
from responder.overflow import MANAGERS, overflow_policy
from review_app.i18n import t
from review_app.views.approvals import BULK_NOTE_KEY, note_key, pick_key
from review_app.views.queue import reply_key
from tests.support.desk import HOSTILE, desk_engine, open_app, reply_row, seed
from tests.support.factories import scored_post, staff


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file (no senders: approvals wait for the worker's outbox)."""
    yield from desk_engine(tmp_path, monkeypatch)


def _links(at: object) -> list[str]:
    return [el.proto.label for el in at.get("page_link")]  # type: ignore[attr-defined]


def _htmls(at: object) -> list[str]:
    return [el.proto.body for el in at.get("html")]  # type: ignore[attr-defined]


def _markdown(at: object) -> list[str]:
    """The page's markdown as a person reads it (escapes dropped)."""
    return [re.sub(r"\\(.)", r"\1", m.value) for m in at.markdown]  # type: ignore[attr-defined]


def test_an_agents_edit_reaches_waiting_for_approval_with_name_and_diff_and_is_approved(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid = desk.replies["low"]
    suggested = reply_row(app_engine, rid).text
    agent = open_app(desk.agent)
    assert t("en", "page_approvals") not in _links(agent)  # agents submit; managers approve
    agent.text_area(key=reply_key(rid)).set_value(suggested + " Order #5521 <b>ships</b> today.")
    agent.button(key=f"submit_{rid}").click().run()
    assert reply_row(app_engine, rid).state == ReplyState.PENDING_APPROVAL

    at = open_app(desk.manager)
    assert t("en", "page_approvals") in _links(at)
    at.switch_page("views/approvals.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert t("en", "apr_count_one", n=1) in _markdown(at)
    assert any("From **Ana Agent**" in m for m in _markdown(at))
    (diff,) = _htmls(at)
    assert "<ins" in diff and "&lt;b&gt;ships&lt;/b&gt;" in diff and "<b>" not in diff
    assert "low: do you open on sundays" in [el.value for el in at.text]  # the customer's message
    at.button(key=f"approval_ok_{rid}").click().run()
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.APPROVED and row.approved_by_id == desk.manager.id
    assert [s.value for s in at.success] == [t("en", "msg_approved_later", reply=rid)]
    assert t("en", "apr_empty") in [i.value for i in at.info]


def test_reject_needs_a_note_then_the_author_sees_it_in_my_submissions_and_notifications(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid = desk.replies["medium"]
    with Session(app_engine) as s:
        submit_reply(s, reply_id=rid, staff=desk.agent, text=HOSTILE)
    at = open_app(desk.manager)
    at.switch_page("views/approvals.py").run()
    assert all("<script>" not in h for h in _htmls(at)) and any("&lt;script&gt;" in h for h in _htmls(at))
    at.button(key=f"approval_no_{rid}").click().run()
    assert len(at.error) == 1 and "say why the reply is rejected" in at.error[0].value
    assert reply_row(app_engine, rid).state == ReplyState.PENDING_APPROVAL
    at.text_input(key=note_key(rid)).set_value("Give the order number, and no HTML please")
    at.button(key=f"approval_no_{rid}").click().run()
    assert reply_row(app_engine, rid).state == ReplyState.REJECTED

    agent = open_app(desk.agent)
    assert t("en", "page_notifications_unread", n=1) in _links(agent)
    agent.switch_page("views/submissions.py").run()
    assert not agent.exception, [e.value for e in agent.exception]
    assert any("**rejected**" in m for m in _markdown(agent))
    assert "Give the order number, and no HTML please" in [el.value for el in agent.text]
    agent.switch_page("views/notifications.py").run()
    assert any(t("en", "ntf_rejected", post=desk.posts["medium"].id) in m for m in _markdown(agent))
    agent.button(key="notifications_read_all").click().run()
    assert t("en", "ntf_unread_other", n=0) in _markdown(agent)
    assert t("en", "page_notifications") in _links(agent)


def test_several_approved_at_once_and_one_refusal_is_reported(app_engine: Engine) -> None:
    desk = seed(app_engine)
    ids = [desk.replies[name] for name in ("low", "medium", "high")]
    with Session(app_engine) as s:
        for rid in ids[:2]:
            submit_reply(s, reply_id=rid, staff=desk.agent, text=f"Edited answer {rid}")
    at = open_app(desk.manager)
    at.switch_page("views/approvals.py").run()
    at.button(key="approvals_bulk_ok").click().run()
    assert [w.value for w in at.warning] == [t("en", "apr_bulk_none")]
    for rid in ids[:2]:
        at.checkbox(key=pick_key(rid)).check()
    at.run()
    # Meanwhile the agent withdrew nothing, but a colleague approved one of them from the queue.
    with Session(app_engine) as s:
        from responder.actions import approve_reply

        approve_reply(s, reply_id=ids[0], staff=s.get(Staff, desk.manager2.id))  # type: ignore[arg-type]
    at.text_input(key=BULK_NOTE_KEY).set_value("ok")
    at.button(key="approvals_bulk_ok").click().run()
    assert t("en", "apr_bulk_done", ok=1, n=2) in [w.value for w in at.warning]
    assert any(w.value.startswith(t("en", "apr_bulk_refused", reply=ids[0], detail="")) for w in at.warning)
    assert reply_row(app_engine, ids[1]).state == ReplyState.APPROVED
    assert reply_row(app_engine, ids[1]).approved_by_id == desk.manager.id
    assert reply_row(app_engine, ids[0]).approved_by_id == desk.manager2.id


def test_a_full_team_shows_the_banner_and_the_backlog_and_admins_set_the_policy(app_engine: Engine) -> None:
    desk = seed(app_engine)
    with Session(app_engine, expire_on_commit=False) as s:
        for member in (desk.manager, desk.agent):
            row = s.get(Staff, member.id)
            assert row is not None
            row.capacity = 0
            s.add(row)
        s.commit()
        waiting = scored_post(s, age_s=5000, text="oldest waiting post")
        scored_post(s, age_s=50, text="newest waiting post")
        admin = staff(s, "Alex Admin", role="admin", available=False)
    at = open_app(desk.manager)
    (banner,) = [w.value for w in at.warning]
    assert banner.startswith("**The whole team is at capacity**") and "Unassigned: 2" in banner
    assert "leave them unassigned" in banner
    shown = [el.value for el in at.expander[0].text]
    assert shown == ["oldest waiting post", "newest waiting post"]
    assert any(f"Post {waiting.id}" in m for m in (x.value for x in at.expander[0].markdown))

    at = open_app(admin)
    at.switch_page("views/admin.py").run()
    at.selectbox(key="overflow_policy").set_value(MANAGERS)
    at.button(key="save_overflow").click().run()
    with Session(app_engine) as s:
        assert overflow_policy(s) == MANAGERS
