"""The review desk: its queries, its escaping, and the Streamlit app driven through AppTest."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from markdown_it import MarkdownIt
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from models.tables import Post, PostStatus, Reply, ReplyState, Staff, utcnow
from networks.base import SentReply
from responder.actions import submit_reply
from responder.assign import assign_pending
from responder.sla_targets import PUBLIC_COMPLAINT_S
from review_app import context
from review_app.i18n import STRINGS, t, tn
from review_app.queries import UNASSIGNED, QueueFilters, count_queue, fetch_queue, filter_options, posts_per_hour
from review_app.safe import md, plain, shorten
from review_app.views.queue import note_key, reason_key, reply_key
from tests.support.desk import (
    APP,
    HOSTILE,
    TIMEOUT,
    FakeSender,
    approve,
    audits,
    desk_engine,
    open_app,
    open_tools,
    reply_row,
    seed,
)
from tests.support.factories import scored_post, staff

# --- safe.py ---


def _rendered_text(markdown: str) -> str:
    """Render with a CommonMark parser and return the visible text, failing on any tag but <p>/<br>."""
    out = MarkdownIt("commonmark").render(markdown).strip()
    tags = set(re.findall(r"<[^>]*>", out))
    assert tags <= {"<p>", "</p>", "<br />"}, out
    return html.unescape(re.sub(r"</?p>|<br />\n?", "", out))


def test_md_escapes_markdown_html_and_streamlit_syntax() -> None:
    escaped = md(HOSTILE)
    assert "<script>" not in escaped and "[click](" not in escaped and "**bold**" not in escaped
    assert _rendered_text(escaped) == HOSTILE
    assert md(":red[alarm] $x$ # title") == "\\:red\\[alarm\\] \\$x\\$ \\# title"


def test_md_folds_lines_inline_and_keeps_them_as_breaks_otherwise() -> None:
    assert md("one\n\n# two\r\n- three") == "one \\# two \\- three"
    assert md("one\n\n\ntwo", inline=False) == "one  \ntwo"


def test_plain_drops_control_and_bidi_characters_but_keeps_lines_and_emoji() -> None:
    assert plain("a\x00b\x1b[31mc\u202eevil\u2066\nnext\tcol 👩\u200d💻") == "ab[31mcevil\nnext\tcol 👩\u200d💻"
    assert plain(None) == "" and md(None) == ""


def test_shorten_cuts_with_an_ellipsis() -> None:
    assert shorten("abcdef", 4) == "abc…"
    assert shorten("abc", 4) == "abc"


@settings(max_examples=300, deadline=None)
@given(hst.text(alphabet=hst.characters(codec="utf-8"), max_size=60))
def test_md_always_renders_back_to_the_cleaned_text(text: str) -> None:
    assert _rendered_text(md(text)) == " ".join(plain(text).split())


# --- queries.py (on SQLite and PostgreSQL through the shared `session` fixture) ---


def test_queue_ranks_by_urgency_then_oldest_and_leaves_closed_posts_out(session: Session) -> None:
    low = scored_post(session, urgency=10, text="low")
    old_high = scored_post(session, urgency=80, age_s=3600, text="old high")
    new_high = scored_post(session, urgency=80, age_s=60, text="new high")
    unranked = scored_post(session, urgency=0, text="unranked")
    unranked.urgency = None
    done = scored_post(session, urgency=99, text="done")
    done.status = PostStatus.REPLIED
    quiet = scored_post(session, urgency=99, text="no answer needed")
    quiet.needs_response = False
    session.add_all([unranked, done, quiet])
    session.commit()
    page = fetch_queue(session, filters=QueueFilters())
    assert [i.post_id for i in page.items] == [old_high.id, new_high.id, low.id, unranked.id]
    assert page.total == 4 and page.pages == 1


def test_queue_filters_each_field(session: Session) -> None:
    ana = staff(session, "Ana Filter")
    es_fb = scored_post(session, network="facebook", kind="comment", language="es", sentiment="positive")
    en_dm = scored_post(session, network="x", kind="dm", language="en", sentiment="negative")
    en_dm.assignee_id = ana.id
    en_dm.status = PostStatus.ASSIGNED
    session.add(en_dm)
    session.commit()

    def ids(**kw: object) -> set[int]:
        filters = QueueFilters(**kw)  # type: ignore[arg-type]
        found = {i.post_id for i in fetch_queue(session, filters=filters).items}
        assert count_queue(session, filters=filters) == len(found)
        return found

    assert ids() == {es_fb.id, en_dm.id}
    assert ids(networks=("facebook",)) == {es_fb.id}
    assert ids(kinds=("dm", "mention")) == {en_dm.id}
    assert ids(languages=("es",)) == {es_fb.id}
    assert ids(sentiments=("negative",)) == {en_dm.id}
    assert ids(statuses=("assigned",)) == {en_dm.id}
    assert ids(statuses=("replied",)) == {es_fb.id, en_dm.id}  # not a queue status: ignored
    assert ids(assignee_id=ana.id) == {en_dm.id}
    assert ids(assignee_id=UNASSIGNED) == {es_fb.id}
    assert ids(networks=("facebook",), sentiments=("negative",)) == set()
    options = filter_options(session)
    assert options.networks == ["facebook", "x"]
    assert options.kinds == ["comment", "dm"]
    assert options.languages == ["en", "es"]
    assert options.sentiments == ["negative", "positive"]


def test_queue_pages_in_sql_without_overlap_and_clamps_the_page(session: Session) -> None:
    made = [scored_post(session, urgency=u).id for u in range(7)]
    pages = [fetch_queue(session, filters=QueueFilters(), page=n, page_size=3) for n in (1, 2, 3)]
    assert [p.pages for p in pages] == [3, 3, 3]
    assert [len(p.items) for p in pages] == [3, 3, 1]
    seen = [i.post_id for p in pages for i in p.items]
    assert seen == list(reversed(made))
    beyond = fetch_queue(session, filters=QueueFilters(), page=99, page_size=3)
    assert beyond.page == 3 and [i.post_id for i in beyond.items] == [made[0]]
    assert fetch_queue(session, filters=QueueFilters(), page=0, page_size=3).page == 1


def test_queue_item_carries_thread_reply_author_and_sla(session: Session) -> None:
    manager = staff(session, "Mia Item", role="manager")
    parent = scored_post(session, text="our launch post")
    parent.status = PostStatus.NO_ACTION
    linked = scored_post(session, kind="comment", network="facebook", complaint=0.9, age_s=120, text="child")
    linked.parent_id = parent.id
    loose = scored_post(session, text="loose child")
    loose.in_reply_to_external_id = parent.external_id
    session.add_all([parent, linked, loose])
    session.commit()
    assign_pending(session)
    session.commit()
    reply = session.execute(select(Reply).where(col(Reply.post_id) == linked.id)).scalar_one()
    items = {i.post_id: i for i in fetch_queue(session, filters=QueueFilters()).items}
    assert linked.id is not None and loose.id is not None
    item = items[linked.id]
    assert item.parent_text == "our launch post"
    assert items[loose.id].parent_text == "our launch post"
    assert item.reply_id == reply.id and item.reply_state == ReplyState.SUGGESTED
    assert item.reply_text == reply.text
    assert item.assignee_name == manager.name
    assert item.author_username.startswith("user") and item.author_followers == 100
    assert item.due_at - item.created_at == timedelta(seconds=PUBLIC_COMPLAINT_S)
    assert item.sentiment == "negative" and item.p_negative == pytest.approx(0.8)


def test_posts_per_hour_buckets_by_utc_hour_and_sentiment(session: Session) -> None:
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    for age_h, sentiment in ((0, "negative"), (0, "negative"), (0, "positive"), (2, "neutral"), (72, "negative")):
        post = scored_post(session, sentiment=sentiment)
        post.created_at = now - timedelta(hours=age_h)
        session.add(post)
    session.commit()
    rows = posts_per_hour(session, hours=48, now=now)
    got = {(r.hour, r.sentiment): r.count for r in rows}
    hour = now.replace(minute=0)
    assert got == {
        (hour, "negative"): 2,
        (hour, "positive"): 1,
        (hour - timedelta(hours=2), "neutral"): 1,
    }


# --- the app (AppTest against a temporary SQLite database) ---


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's own engine on a fresh SQLite file, with no sender registry unless a test adds one."""
    yield from desk_engine(tmp_path, monkeypatch)


def test_queue_lists_posts_by_urgency_and_shows_hostile_text_literally(app_engine: Engine) -> None:
    desk = seed(app_engine)
    at = open_app(desk.manager)
    texts = [el.value for el in at.text]
    assert texts == [HOSTILE, desk.posts["medium"].text, desk.posts["low"].text]
    assert at.title[0].value == t("en", "queue_title")
    assert tn("en", "queue_count", 3, page=1, pages=1) in [m.value for m in at.markdown]
    # Markdown elements only ever carry the escaped author name, never the raw one or the raw post.
    markdown = " ".join(m.value for m in [*at.markdown, *at.caption])
    assert "**evil**<b>" not in markdown and md("**evil**<b>") in markdown
    assert "<script>" not in markdown and "[click](" not in markdown
    assert at.text_area(key=reply_key(desk.replies["high"])).value == reply_row(app_engine, desk.replies["high"]).text
    assert any(t("en", "no_senders") == c.value for c in at.caption)


def test_manager_approves_exactly_once_and_the_second_approver_is_told(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid = desk.replies["medium"]
    loser = open_app(desk.manager2)
    loser.button(key=f"approve_{rid}").click().run()  # first click: the confirmation is on screen
    assert f"confirm_{rid}" in [b.key for b in loser.button] and not loser.success
    assert reply_row(app_engine, rid).state == ReplyState.SUGGESTED  # one click sends nothing
    winner = open_app(desk.manager)
    winner.text_area(key=reply_key(rid)).set_value("We are on it, sorry!")
    approve(winner, rid)
    assert [s.value for s in winner.success] == [t("en", "msg_approved_later", reply=rid)]
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.APPROVED
    assert row.approved_by_id == desk.manager.id and row.text == "We are on it, sorry!"
    loser.button(key=f"confirm_{rid}").click().run()
    assert any("already approved by Mara Manager" in w.value for w in loser.warning)
    assert reply_row(app_engine, rid).approved_by_id == desk.manager.id
    assert audits(app_engine, "reply_approved") == 1
    # The approved reply is no longer editable: no approve button for it on a fresh render.
    assert f"approve_{rid}" not in [b.key for b in winner.run().button]


def test_approve_and_send_uses_the_sender_registry(app_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = FakeSender()
    monkeypatch.setattr(context, "build_senders", lambda settings: {"x": sender})
    desk = seed(app_engine)
    rid = desk.replies["high"]
    at = open_app(desk.manager)
    approve(at, rid)
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.SENT and row.external_id == f"r-{desk.posts['high'].external_id}"
    assert sender.sent == [row.text]
    assert [s.value for s in at.success] == [t("en", "msg_sent", reply=rid, detail=md(row.external_id))]
    assert HOSTILE not in [el.value for el in at.text]  # answered: it left the queue


def test_a_sender_crash_is_reported_and_the_reply_held_in_sending(
    app_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(FakeSender):
        def send_reply(self, **kw: object) -> SentReply:  # type: ignore[override]
            raise RuntimeError("socket closed mid-request")

    monkeypatch.setattr(context, "build_senders", lambda settings: {"x": Broken()})
    desk = seed(app_engine)
    rid = desk.replies["low"]
    at = open_app(desk.manager)
    approve(at, rid)
    assert not at.exception and not at.success
    assert [w.value for w in at.warning] == [t("en", "msg_send_crashed", reply=rid, detail="RuntimeError")]
    assert reply_row(app_engine, rid).state == ReplyState.SENDING


def test_agent_cannot_approve_and_nothing_changes(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid = desk.replies["medium"]
    assert f"approve_{rid}" not in [b.key for b in open_app(desk.agent).button]
    # The button is not the guard: a manager demoted while the confirmation is open is refused on the server.
    at = open_app(desk.manager)
    at.button(key=f"approve_{rid}").click().run()
    with Session(app_engine) as s:
        demoted = s.get(Staff, desk.manager.id)
        assert demoted is not None
        demoted.role = "agent"
        s.add(demoted)
        s.commit()
    at.button(key=f"confirm_{rid}").click().run()
    assert t("en", "agent_hint") in [c.value for c in at.caption]
    assert len(at.error) == 1 and "may not approve reply" in at.error[0].value
    assert at.error[0].value.startswith(t("en", "msg_not_allowed", detail=""))
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.SUGGESTED and row.approved_by_id is None
    assert audits(app_engine, "reply_approved") == 0


def test_agent_submits_an_edited_reply_for_approval(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid = desk.replies["low"]
    at = open_app(desk.agent, lang="es")
    at.text_area(key=reply_key(rid)).set_value("Abrimos de 10 a 14 h.")
    at.button(key=f"submit_{rid}").click().run()
    assert [s.value for s in at.success] == [t("es", "msg_submitted", reply=rid)]
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.PENDING_APPROVAL and row.text == "Abrimos de 10 a 14 h."
    assert row.author_staff_id == desk.agent.id


def test_manager_rejects_with_a_note_and_needs_one(app_engine: Engine) -> None:
    desk = seed(app_engine)
    rid = desk.replies["medium"]
    with Session(app_engine) as s:
        submit_reply(s, reply_id=rid, staff=desk.agent, text="Hola, lo miramos")
    at = open_tools(open_app(desk.manager), desk.posts["medium"].id)
    at.button(key=f"reject_{rid}").click().run()
    assert len(at.error) == 1 and "say why the reply is rejected" in at.error[0].value
    assert reply_row(app_engine, rid).state == ReplyState.PENDING_APPROVAL
    at.text_input(key=note_key(rid)).set_value("too casual")
    at.button(key=f"reject_{rid}").click().run()
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.REJECTED and row.note == "too casual"
    assert t("en", "reply_note", note="too casual") in [c.value for c in at.caption]


def test_dismiss_with_reason_closes_the_post(app_engine: Engine) -> None:
    desk = seed(app_engine)
    post = desk.posts["low"]  # the manager's post: she may dismiss it (an agent only their own)
    at = open_tools(open_app(desk.manager), post.id)
    at.text_input(key=reason_key(post.id or 0)).set_value("spam")
    at.button(key=f"dismiss_{post.id}").click().run()
    assert [s.value for s in at.success] == [t("en", "msg_dismissed", post=post.id)]
    with Session(app_engine) as s:
        stored = s.get(Post, post.id)
        assert stored is not None
        assert stored.status == PostStatus.DISMISSED and stored.resolution_note == "spam"
    assert post.text not in [el.value for el in at.text]
    assert reply_row(app_engine, desk.replies["low"]).state == ReplyState.REJECTED


def test_queue_pages_and_filters_through_the_ui(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Paz Pager", role="manager")
        for n in range(27):
            scored_post(s, urgency=n, network="facebook" if n == 26 else "x", text=f"post {n}")
    at = open_app(boss)
    assert len(at.text) == 25 and at.text[0].value == "post 26"
    at.number_input(key="queue_page").set_value(2).run()
    assert [el.value for el in at.text] == ["post 1", "post 0"]
    at.multiselect[0].select("facebook").run()  # a new filter goes back to page 1
    assert [el.value for el in at.text] == ["post 26"]
    assert at.number_input(key="queue_page").value == 1


def test_marketing_cannot_view_the_queue(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        noa = staff(s, "Noa Marketing", role="marketing")
        scored_post(s, text="secret customer post")
    at = open_app(noa)
    assert at.title[0].value == t("en", "trends_title")  # marketing lands on trends; the queue is not listed
    assert "secret customer post" not in [el.value for el in at.text]
    # The page itself refuses too, whatever the navigation shows.
    direct = AppTest.from_file(str(APP.parent / "views" / "queue.py"), default_timeout=TIMEOUT)
    direct.session_state["staff_id"] = noa.id
    direct.session_state["lang"] = "en"
    direct.run()
    assert [i.value for i in direct.info] == [t("en", "queue_not_allowed")]
    assert not direct.text


def test_overview_renders_the_status_counts(app_engine: Engine) -> None:
    desk = seed(app_engine)
    at = open_app(desk.manager, lang="es")
    at.switch_page("views/overview.py").run()
    assert not at.exception
    assert at.title[0].value == t("es", "overview_title")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[t("es", "posts_total")] == "3"
    assert metrics[t("es", "needing_response")] == "3"
    assert metrics[t("es", "unassigned_public")] == "0"
    replies = at.dataframe[3].value  # words, not the stored codes
    assert dict(zip(replies.iloc[:, 0], replies.iloc[:, 1], strict=True)) == {"sugerencia": 3}
    assert len(at.get("vega_lite_chart")) == 1, "the posts-per-hour chart is missing"


def test_no_staff_shows_how_to_add_them(app_engine: Engine) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.run()
    assert [w.value for w in at.warning] == [t("en", "no_staff")]


def test_every_string_exists_in_both_languages() -> None:
    assert set(STRINGS["es"]) == set(STRINGS["en"])
    assert all(STRINGS["es"][k] != STRINGS["en"][k] for k in ("queue_title", "approve_send", "reject", "dismiss"))


def test_every_send_outcome_has_a_message_in_both_languages() -> None:
    """The queue words each outbox result as ``msg_<result>``; a missing string would crash the page."""
    import responder.outbox as outbox
    from review_app.i18n import t

    source = Path(outbox.__file__).read_text()
    results = set(re.findall(r'SendOutcome\([^,]+, "(\w+)"', source))  # literal outcomes
    results |= set(re.findall(r'"(\w+)" if found else "(\w+)"\, sent', source)[0])
    results |= set(re.findall(r'return "(\w+)"', source))  # what _give_back / _requeue return
    results |= {"retry"}  # _give_back's non-final answer
    assert {"sent", "found", "skipped", "failed"} <= results
    for lang in ("es", "en"):
        for result in results:
            assert "{" not in t(lang, f"msg_{result}", reply=1, detail="x")


def test_the_queue_count_agrees_in_number_in_both_languages() -> None:
    assert tn("es", "queue_count", 1, page=1, pages=1) == "1 publicación abierta · página 1 de 1"
    assert tn("es", "queue_count", 2, page=1, pages=1) == "2 publicaciones abiertas · página 1 de 1"
    assert tn("en", "queue_count", 1, page=1, pages=1) == "1 open post · page 1 of 1"
    assert tn("en", "queue_count", 0, page=1, pages=1) == "0 open posts · page 1 of 1"
