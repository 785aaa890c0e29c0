"""Sign-in, every page for every role, and the queue's newer actions (reassign, correct, presence)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.embed import load_embedder
from models.auth import LOCKOUT, MAX_FAILURES, SignIn, authenticate, create_user
from models.presence import watchers
from models.tables import Assignment, AuditEvent, Correction, Post, PostKind, PostStatus, SlaPolicy, Staff, utcnow
from responder.admin import set_sla_policy, update_staff
from responder.corrections import correct_post, reassign_post
from responder.permissions import NotAllowed
from review_app import context
from review_app.context import pick_client
from review_app.i18n import t
from review_app.trends import brand_words, complaint_topics, response_times, to_csv, volume_with_spikes
from review_app.views.queue import reassign_key, reply_key, sentiment_key, urgency_key
from review_app.views.signin import EMAIL_KEY, PASSWORD_KEY
from tests.support.complaints import COMPLAINTS
from tests.support.desk import (
    HOSTILE,
    PASSWORD,
    desk_engine,
    open_app,
    open_tools,
    run_view,
    seed,
    sign_in,
    user,
)
from tests.support.factories import scored_post, staff

ROLES = ("admin", "manager", "agent", "marketing")
TITLES = {
    "queue.py": "queue_title",
    "inbox.py": "inbox_title",
    "trends.py": "trends_title",
    "overview.py": "overview_title",
    "admin.py": "admin_title",
}
REFUSALS = {"queue.py": "queue_not_allowed", "inbox.py": "inbox_not_allowed", "trends.py": "trends_not_allowed",
            "admin.py": "admin_not_allowed"}  # fmt: skip
ALLOWED = {
    "admin": {"queue.py", "inbox.py", "trends.py", "overview.py", "admin.py"},
    "manager": {"queue.py", "inbox.py", "trends.py", "overview.py"},
    "agent": {"queue.py", "inbox.py", "overview.py"},
    "marketing": {"trends.py", "overview.py"},
}


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file (as in test_review_app)."""
    yield from desk_engine(tmp_path, monkeypatch)


# --- sign-in ---


def test_sign_in_with_the_right_password_opens_the_desk_in_the_users_language(app_engine: Engine) -> None:
    mara = user(app_engine, "Mara Signin", "manager", ui_language="es")
    at = sign_in(mara.email, PASSWORD, lang="en")
    assert at.title[0].value == t("es", "queue_title")
    assert at.session_state["staff_id"] == mara.id
    assert at.session_state[PASSWORD_KEY] == ""  # the password does not linger in the session
    with Session(app_engine) as s:
        stored = s.get(Staff, mara.id)
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


def test_wrong_password_and_unknown_email_get_the_same_answer(app_engine: Engine) -> None:
    mara = user(app_engine, "Mara Wrong", "manager")
    for email, password in ((mara.email, "not the password"), ("nobody@test", PASSWORD)):
        at = sign_in(email, password)
        assert [e.value for e in at.error] == [t("en", "signin_invalid")]
        assert "staff_id" not in at.session_state
        assert at.title[0].value == t("en", "app_title")


def test_repeated_failures_lock_the_account_even_for_the_right_password(app_engine: Engine) -> None:
    mara = user(app_engine, "Mara Locked", "manager")
    for _ in range(MAX_FAILURES - 1):
        assert [e.value for e in sign_in(mara.email, "guess").error] == [t("en", "signin_invalid")]
    locked = sign_in(mara.email, "guess")
    assert locked.error[0].value.startswith(t("en", "signin_locked", until="")[:20])
    right = sign_in(mara.email, PASSWORD)
    assert "staff_id" not in right.session_state and right.error[0].value.startswith("Too many failed")
    with Session(app_engine) as s:
        events = s.execute(select(func.count()).where(col(AuditEvent.action) == "signin_locked")).scalar_one()
        assert events == 1
        # Once the lock runs out the right password works again.
        later = utcnow() + LOCKOUT + timedelta(seconds=1)
        assert authenticate(s, email=mara.email, password=PASSWORD, now=later).outcome == SignIn.OK


def test_the_sign_in_page_throttles_by_the_visitor_s_address(
    app_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guesses at Mara's password from elsewhere do not stop Mara at her usual address (the page passes it on)."""
    mara = user(app_engine, "Mara Home", "manager")
    address = {"now": "203.0.113.7"}
    monkeypatch.setattr(context, "client_address", lambda: address["now"])
    assert sign_in(mara.email, PASSWORD).session_state["staff_id"] == mara.id
    address["now"] = "198.51.100.9"
    for _ in range(MAX_FAILURES):
        sign_in(mara.email, "guess")
    stranger = sign_in(mara.email, PASSWORD)
    assert "staff_id" not in stranger.session_state and stranger.error[0].value.startswith("Too many failed")
    address["now"] = "203.0.113.7"
    home = sign_in(mara.email, PASSWORD)
    assert home.session_state["staff_id"] == mara.id and not home.error


def test_the_client_address_comes_from_the_proxy_only_when_it_is_trusted() -> None:
    forwarded = "10.9.9.9, 192.0.2.44"  # a forged hop from the client, then the one our proxy added
    assert pick_client(None, forwarded, trust_forwarded=False) is None
    assert pick_client("198.51.100.2", forwarded, trust_forwarded=False) == "198.51.100.2"
    assert pick_client(None, forwarded, trust_forwarded=True) == "192.0.2.44"
    assert pick_client("198.51.100.2", None, trust_forwarded=True) == "198.51.100.2"


def test_staff_without_a_password_cannot_sign_in(session: Session) -> None:
    staff(session, "No Password", role="admin")
    assert authenticate(session, email="no.password@test", password="").outcome == SignIn.INVALID
    made = create_user(session, name="New One", email="New@Test.example", role="agent", password=PASSWORD)
    assert made.email == "new@test.example"
    assert authenticate(session, email="NEW@test.example", password=PASSWORD).staff is not None


def test_sign_out_returns_to_the_sign_in_form(app_engine: Engine) -> None:
    sam = user(app_engine, "Sam Out", "agent")
    at = sign_in(sam.email, PASSWORD)
    assert at.title[0].value == t("en", "queue_title")
    at.button(key="signout").click().run()
    assert "staff_id" not in at.session_state
    assert at.title[0].value == t("en", "app_title") and at.text_input(key=EMAIL_KEY).value == ""


def test_the_language_toggle_is_remembered_per_user(app_engine: Engine) -> None:
    sam = user(app_engine, "Sam Lang", "agent", ui_language="en")
    at = sign_in(sam.email, PASSWORD)
    at.button_group[0].set_value("es").run()
    assert at.title[0].value == t("es", "queue_title")
    with Session(app_engine) as s:
        stored = s.get(Staff, sam.id)
        assert stored is not None and stored.ui_language == "es"


# --- every page for every role ---


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_pages_and_the_others_refuse(app_engine: Engine, role: str) -> None:
    desk = seed(app_engine)
    member = user(app_engine, f"Role {role}", role)
    at = open_app(member)
    default = "queue.py" if role != "marketing" else "trends.py"
    assert at.title[0].value == t("en", TITLES[default])
    for view, title in TITLES.items():
        if view in ALLOWED[role]:
            at.switch_page(f"views/{view}").run()
            assert not at.exception, (view, [e.value for e in at.exception])
            assert at.title[0].value == t("en", title)
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(f"views/{view}")
            # Not only hidden: the page refuses when its script is run directly.
            direct = run_view(view, member)
            assert [i.value for i in direct.info] == [t("en", REFUSALS[view])]
            assert HOSTILE not in [el.value for el in direct.text]
    assert desk.posts


def test_agent_has_no_approve_reject_or_reassign_buttons_but_can_submit_and_correct(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid, pid = desk.replies["medium"], desk.posts["medium"].id
    at = open_tools(open_app(desk.agent), pid)
    keys = {b.key for b in at.button}
    assert f"submit_{rid}" in keys and f"correct_{pid}" in keys
    # The post is the manager's: an agent may not dismiss a colleague's post, so the desk does not offer it.
    assert not {f"approve_{rid}", f"reject_{rid}", f"reassign_{pid}", f"dismiss_{pid}"} & keys


def test_the_desk_offers_dismiss_only_where_the_signed_in_person_may_dismiss(app_engine: Engine) -> None:
    desk = seed(app_engine)
    own, colleague = desk.posts["medium"], desk.posts["low"]
    with Session(app_engine) as s:
        post = s.get(Post, own.id)
        assert post is not None
        post.assignee_id = desk.agent.id
        s.add(post)
        s.commit()
    for member, post_id, offered in (
        (desk.agent, own.id, True),
        (desk.agent, colleague.id, False),
        (desk.manager2, own.id, True),  # managers act on anything, a colleague's post included
        (desk.manager2, colleague.id, True),
    ):
        keys = {b.key for b in open_tools(open_app(member), post_id).button}
        assert (f"dismiss_{post_id}" in keys) is offered, (member.name, post_id)


# --- reassign, correct, presence ---


def test_manager_reassigns_a_post_and_the_history_says_who(app_engine: Engine) -> None:
    desk = seed(app_engine)
    post_id = desk.posts["medium"].id
    assert post_id is not None
    at = open_tools(open_app(desk.manager), post_id)
    at.selectbox(key=reassign_key(post_id)).set_value(desk.agent.id)
    at.button(key=f"reassign_{post_id}").click().run()
    assert [s.value for s in at.success] == [t("en", "msg_reassigned", post=post_id, name="Ana Agent")]
    with Session(app_engine) as s:
        post = s.get(Post, post_id)
        assert post is not None and post.assignee_id == desk.agent.id
        history = list(s.execute(select(Assignment).where(col(Assignment.post_id) == post_id)).scalars())
        assert [(a.staff_id, a.ended_at is None) for a in history] == [(desk.manager.id, False), (desk.agent.id, True)]
        assert history[-1].performed_by == f"staff:{desk.manager.id}"
        agent = s.get(Staff, desk.agent.id)
        assert agent is not None
        with pytest.raises(NotAllowed):
            reassign_post(s, post_id=post_id, staff=agent, to_staff_id=desk.manager.id or 0)


def test_corrections_are_stored_as_labels_and_no_reply_needed_closes_the_post(app_engine: Engine) -> None:
    desk = seed(app_engine)
    post_id = desk.posts["low"].id
    assert post_id is not None
    at = open_tools(open_app(desk.agent), post_id)
    at.selectbox(key=sentiment_key(post_id)).set_value("positive")
    at.number_input(key=urgency_key(post_id)).set_value(85)
    at.button(key=f"correct_{post_id}").click().run()
    assert [s.value for s in at.success] == [t("en", "msg_corrected", post=post_id, fields="sentiment, urgency")]
    at.button(key=f"no_reply_{post_id}").click().run()
    assert desk.posts["low"].text not in [el.value for el in at.text]
    with Session(app_engine) as s:
        labels = {(c.field, c.old_value, c.new_value, c.staff_id) for c in s.execute(select(Correction)).scalars()}
        assert labels == {
            ("sentiment", "negative", "positive", desk.agent.id),
            ("urgency", "10", "85", desk.agent.id),
            ("needs_response", "True", "False", desk.agent.id),
        }
        post = s.get(Post, post_id)
        assert post is not None and post.status == PostStatus.NO_ACTION and post.urgency == 85
        marketing = staff(s, "Mia Marketing", role="marketing")
        with pytest.raises(NotAllowed):
            correct_post(s, post_id=post_id, staff=marketing, sentiment="negative")


def test_the_queue_says_who_else_is_viewing_or_editing(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid, pid = desk.replies["high"], desk.posts["high"].id
    first = open_app(desk.manager)
    first.text_area(key=reply_key(rid)).set_value("Working on it").run()
    second = open_app(desk.manager2)
    lines = [m.value for m in second.markdown if "Mara Manager" in m.value]
    assert any(t("en", "mode_editing") in line for line in lines), lines
    viewing = [m.value for m in second.markdown if t("en", "mode_viewing") in m.value]
    assert len(viewing) == 2  # the other two posts on Mara's page
    assert not [m.value for m in first.markdown if "Nico Manager" in m.value]  # Mara's page was drawn first
    with Session(app_engine) as s:
        seen = watchers(s, post_ids=[pid or 0], except_staff_id=desk.manager.id)
        assert {p: [w.name for w in ws] for p, ws in seen.items()} == {pid: ["Nico Manager"]}


# --- inbox ---


def test_inbox_lists_only_my_posts_and_dms_oldest_due_first(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        me = staff(s, "Ines Inbox", role="agent")
        other = staff(s, "Otto Other", role="agent")
        now = utcnow()
        made = {}
        for name, due_min, owner, kind in (
            ("later", 50, me, PostKind.MENTION),
            ("soon dm", 5, me, PostKind.DM),
            ("not mine", 1, other, PostKind.MENTION),
        ):
            post = scored_post(s, text=name, kind=kind)
            post.assignee_id, post.status, post.due_at = owner.id, PostStatus.ASSIGNED, now + timedelta(minutes=due_min)
            s.add(post)
            made[name] = post
        s.commit()
    at = open_app(me)
    at.switch_page("views/inbox.py").run()
    assert [el.value for el in at.text] == ["soon dm", "later"]
    assert t("en", "inbox_count", total=2) in [m.value for m in at.markdown]


# --- trends ---


def test_trends_draws_the_charts_and_offers_csv_for_each(app_engine: Engine) -> None:
    load_embedder()  # loaded once per process, as in the app; not inside the page's 20 s test timeout
    with Session(app_engine, expire_on_commit=False) as s:
        noa = staff(s, "Noa Trends", role="marketing")
        scored_post(s, text="=HYPERLINK(evil) refund refund", complaint=0.9)
        for posts in COMPLAINTS.values():
            for lang, text in posts:
                scored_post(s, text=text, language=lang, complaint=0.9)
        scored_post(s, text="love it", sentiment="positive", complaint=0.0)
    at = open_app(noa)
    assert at.title[0].value == t("en", "trends_title")
    # Sentiment share, volume, and the themes' weeks (no survey answers yet: no satisfaction charts).
    assert len(at.get("vega_lite_chart")) == 3
    assert len(at.get("download_button")) == 6
    # Each theme's example is one of the complaints, shown as plain text (a formula or markup stays inert).
    examples = [el.value for el in at.text]
    complaints = {text for posts in COMPLAINTS.values() for _, text in posts} | {"=HYPERLINK(evil) refund refund"}
    assert len(examples) >= 3 and set(examples) <= complaints
    assert "love it" not in examples  # not a complaint
    assert t("en", "csat_none") in [c.value for c in at.caption]
    at.selectbox(key="trends_group").set_value("keyword").run()
    at.text_input(key="trends_keywords").input("factura, refund").run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 3


def test_csv_export_defuses_spreadsheet_formulas() -> None:
    csv = to_csv(pd.DataFrame({"topic": ["=cmd|' /C calc'!A0", "@SUM(1)", "ok"], "posts": [1, 2, 3]})).decode()
    assert csv.splitlines()[1:] == ["'=cmd|' /C calc'!A0,1", "'@SUM(1),2", "ok,3"]


def test_volume_flags_a_spike_against_the_previous_hours_only() -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    times = [start + pd.Timedelta(hours=h) for h in range(30) for _ in range(2)]
    times += [start + pd.Timedelta(hours=30, minutes=m) for m in range(40)]
    frame = pd.DataFrame({"created_at": times})
    volume = volume_with_spikes(frame)
    assert list(volume.loc[volume["spike"], "hour"]) == [start + pd.Timedelta(hours=30)]
    assert volume["posts"].iloc[-1] == 40 and volume["baseline"].iloc[-1] == 2.0


def test_response_times_median_p90_and_sla_attainment() -> None:
    now = pd.Timestamp("2026-01-02", tz="UTC")
    created = now - pd.Timedelta(hours=10)
    rows = [(60, 600), (120, 600), (900, 600), (None, 600), (None, 10**6)]  # answered after s; due after s
    frame = pd.DataFrame(
        {
            "created_at": [created] * len(rows),
            "answered_at": [created + pd.Timedelta(seconds=a) if a else pd.NaT for a, _ in rows],
            "due_at": [created + pd.Timedelta(seconds=d) for _, d in rows],
            "needs_response": [True] * len(rows),
        }
    )
    got = response_times(frame, now=now.to_pydatetime())
    assert got["answered"] == 3 and got["median_s"] == 120.0
    assert got["p90_s"] == pytest.approx(744.0)
    # Four judged (the fifth is still inside its window), two of them met.
    assert got["judged"] == 4 and got["sla_attainment"] == 0.5


def test_complaint_topics_count_each_post_once_and_skip_non_complaints() -> None:
    frame = pd.DataFrame(
        {"complaint": [0.9, 0.8, 0.1], "text": ["<script>outage</script> outage", "outage again", "outage fine"]}
    )
    assert complaint_topics(frame).to_dict("list") == {"topic": ["outage", "script"], "posts": [2, 1]}


# --- admin ---


def test_complaint_topics_leave_out_handles_and_links() -> None:
    frame = pd.DataFrame(
        {
            "text": ["@EscuchaHelp estoy harto, refund refund https://x.co/abc", "@EscuchaHelp refund please"],
            "complaint": [0.9, 0.8],
        }
    )
    topics = complaint_topics(frame).to_dict("list")
    assert topics["topic"][0] == "refund" and topics["posts"][0] == 2
    assert not {"escuchahelp", "estoy", "https"} & set(topics["topic"])


def test_complaint_topics_leave_out_the_brand_search_terms_every_hit_contains() -> None:
    frame = pd.DataFrame(
        {
            "text": ["Cafetería Aurora: pedido frío otra vez", "cafeteria aurora pedido tarde", "Aurora, pedido roto"],
            "complaint": [0.9, 0.8, 0.7],
        }
    )
    assert complaint_topics(frame).to_dict("list")["topic"][:2] == ["aurora", "pedido"]  # the brand tops it
    brand = brand_words('("cafetería aurora" OR cafeteria) -is:retweet lang:es', "AuroraCafe")
    assert {"cafetería", "aurora", "cafeteria", "auroracafe"} <= brand and not {"retweet", "lang"} & brand
    topics = complaint_topics(frame, leave_out=brand).to_dict("list")
    assert topics["topic"][0] == "pedido" and topics["posts"][0] == 3
    assert not brand & set(topics["topic"])


def test_admin_changes_staff_and_sla_and_others_are_refused_by_the_functions(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Ada Admin", role="admin")
        worker = staff(s, "**Wes** <b>Worker</b>", role="agent")
    at = open_app(boss)
    at.switch_page("views/admin.py").run()
    labels = [e.label for e in at.expander]
    assert "**Wes** <b>Worker</b>" not in " ".join(labels)
    at.number_input(key=f"capacity_{worker.id}").set_value(33)
    at.checkbox(key=f"available_{worker.id}").uncheck()
    at.button(key=f"save_staff_{worker.id}").click().run()
    assert [x.value for x in at.success] == [t("en", "msg_saved")]
    at.number_input(key="sla_seconds").set_value(1800)
    at.button(key="save_sla").click().run()
    at.button(key=f"add_shift_{worker.id}").click().run()
    with Session(app_engine) as s:
        stored = s.get(Staff, worker.id)
        assert stored is not None and stored.capacity == 33 and not stored.available
        policy = s.execute(select(SlaPolicy)).scalar_one()
        assert (policy.channel, policy.lane, policy.seconds) == ("public", "crisis", 1800)
        manager = staff(s, "Max Manager", role="manager")
        with pytest.raises(NotAllowed):
            update_staff(s, actor=manager, staff_id=worker.id or 0, role="admin", capacity=1, languages="es",
                         channels="dm", available=True)  # fmt: skip
        with pytest.raises(NotAllowed):
            set_sla_policy(s, actor=manager, channel="dm", lane="other", seconds=60, business_hours=False)
        admin = s.get(Staff, boss.id)
        assert admin is not None
        with pytest.raises(ValueError, match="keep at least one admin"):
            update_staff(s, actor=admin, staff_id=boss.id or 0, role="agent", capacity=1, languages="es",
                         channels="dm", available=True)  # fmt: skip


def test_a_demoted_admin_loses_the_admin_page_on_the_next_render(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Ada Demoted", role="admin")
        staff(s, "Other Admin", role="admin")
    at = open_app(boss)
    at.switch_page("views/admin.py").run()
    with Session(app_engine) as s:
        row = s.get(Staff, boss.id)
        assert row is not None
        row.role = "agent"
        s.add(row)
        s.commit()
    with contextlib.suppress(ValueError):
        at.run()
    assert t("en", "admin_title") not in [x.value for x in at.title]
