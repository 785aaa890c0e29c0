"""Issue 14's desk through Streamlit's AppTest, in both languages: the crisis view and lane, who submitted a card's
answer, bulk dismissal (permissions, the skipped-because-changed case, "all shown by this filter"), and a keyword
hit turned into a task that its assignee marks done. Every message shows beside what was acted on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from models.alerts import list_alerts
from models.tables import Post, PostKind, PostStatus, Reply, ReplyState, Score, Staff, Task, utcnow
from responder.actions import approve_reply, submit_reply
from responder.assign import assign_pending
from review_app.i18n import t
from review_app.labels import code, crisis_kind
from review_app.launch import APP
from review_app.views.bulk import NOTE_KEY, REASON_KEY, pick_key
from review_app.views.lanes import task_keys
from tests.support.desk import TIMEOUT, VIEWS, desk_engine, open_app
from tests.support.factories import scored_post, staff


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file (no senders: approvals wait for the worker's outbox)."""
    yield from desk_engine(tmp_path, monkeypatch)


def _markdown(at: AppTest) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", m.value) for m in at.markdown]


def _block(node: Any, key: str) -> Any:
    """The keyed container ``key`` in the page's tree."""
    if getattr(node, "type", "") in ("container", "flex_container") and getattr(node, "key", None) == key:
        return node
    for child in (getattr(node, "children", None) or {}).values():
        found = _block(child, key)
        if found is not None:
            return found
    return None


def _messages_in(at: AppTest, key: str) -> list[str]:
    """The success, warning and error messages shown inside the container ``key``."""
    block = _block(at._tree, key)
    assert block is not None, f"no container {key}"
    out: list[str] = []

    def walk(node: Any) -> None:
        if getattr(node, "type", "") in ("success", "warning", "error"):
            out.append(node.value)
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(block)
    return out


def _address(at: AppTest) -> dict[str, list[str]]:
    return {name: [v] if isinstance(v, str) else list(v) for name, v in at.query_params.items()}


def _cards(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key and b.key.startswith("more_")}


def _crisis(s: Session, text: str, kind: str, *, urgency: int, status: str | None = None) -> Post:
    post = scored_post(s, text=text, crisis=True, urgency=urgency)
    score = s.execute(select(Score).where(col(Score.post_id) == post.id)).scalar_one()
    score.reasons = [f"crisis: {kind}", "test"]
    s.add(score)
    if status is not None:
        post.status, post.resolved_at = status, utcnow()
        s.add(post)
    s.commit()
    return post


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_crisis_view_lists_open_ones_first_with_their_kind_and_keeps_its_filters_in_the_address(
    app_engine: Engine, lang: str
) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        agent = staff(s, "Ana Agent", role="agent", available=False)
        closed = _crisis(s, "they poisoned my dog", "health risk", urgency=99, status=PostStatus.REPLIED)
        legal = _crisis(s, "my lawyer will sue you", "legal threat", urgency=85)
        leak = _crisis(s, "my card data leaked", "data breach", urgency=95)
        calm = scored_post(s, text="where is my parcel")
    at = open_app(agent, lang)
    assert t(lang, "page_crisis") in [el.proto.label for el in at.get("page_link")]
    at.switch_page("views/crisis.py").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [el.value for el in at.text]
    # Open first (most urgent first), then the closed one; never the calm post.
    assert texts == ["my card data leaked", "my lawyer will sue you", "they poisoned my dog"]
    shown = " ".join(_markdown(at))
    for kind in ("data breach", "legal threat", "health risk"):
        assert crisis_kind(lang, kind) in shown
    assert code(lang, "status", "replied") in shown and t(lang, "nobody") in shown
    assert calm.text not in texts
    # Filters go into the address, and an address opens that view.
    at.selectbox(key=f"crisis_state_{lang}").set_value("open").run()
    at.multiselect(key=f"crisis_kinds_{lang}").set_value(["legal threat"]).run()
    assert [el.value for el in at.text] == ["my lawyer will sue you"]
    assert _address(at) == {"state": ["open"], "kind": ["legal threat"]}
    # A link straight to the view (the page on its own: the queue would read the address first in the whole app).
    again = AppTest.from_file(str(VIEWS / "crisis.py"), default_timeout=TIMEOUT)
    again.session_state["staff_id"] = agent.id
    again.session_state["lang"] = lang
    again.query_params["state"] = "open"
    again.query_params["network"] = "facebook"
    again.run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.multiselect(key=f"crisis_networks_{lang}").value == ["facebook"]
    assert t(lang, "crisis_empty") in [el.value for el in again.success]
    assert legal.id and leak.id and closed.id


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_queue_has_a_crisis_lane_and_says_whose_answer_a_card_holds(app_engine: Engine, lang: str) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", senior=True)
        agent = staff(s, "Ana Agent", role="agent", available=False)
        crisis = _crisis(s, "my lawyer will sue you", "legal threat", urgency=90)
        submitted = scored_post(s, text="where is my parcel", urgency=50)
        suggested = scored_post(s, text="do you open on sundays", urgency=40)
        assign_pending(s)
        s.commit()
        nothing = scored_post(s, text="fresh post nobody drafted", urgency=30)
        reply = s.execute(select(Reply).where(col(Reply.post_id) == submitted.id)).scalar_one()
        submit_reply(s, reply_id=reply.id or 0, staff=agent, text="Hi! It left the warehouse today.")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = boss.id
    at.session_state["lang"] = lang
    at.query_params["lane"] = "crisis"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert _cards(at) == {f"more_{crisis.id}"}
    at.selectbox(key=f"queue_lane_{lang}").set_value("all").run()
    assert _cards(at) == {f"more_{p.id}" for p in (crisis, submitted, suggested, nothing)}
    state = code(lang, "state", ReplyState.PENDING_APPROVAL)
    assert t(lang, "answer_from", name="Ana Agent", state=f":blue[**{state}**]") in _markdown(at)
    # A machine suggestion names nobody: one card says whose answer it holds.
    prefix = t(lang, "answer_from", name="", state="").split(" ")[0]
    assert len([m for m in _markdown(at) if m.startswith(prefix + " ")]) == 1
    for choice, expected in (("submitted", submitted), ("suggested", suggested), ("none", nothing)):
        at.selectbox(key=f"queue_answer_{lang}").set_value(choice).run()
        got = _cards(at)
        assert f"more_{expected.id}" in got, (choice, got)
        assert _address(at)["answer"] == [choice]
    at.selectbox(key=f"queue_answer_{lang}").set_value("suggested").run()
    assert f"more_{submitted.id}" not in _cards(at) and f"more_{nothing.id}" not in _cards(at)


@pytest.mark.parametrize("lang", ["es", "en"])
def test_an_agent_bulk_dismisses_their_noise_and_a_post_answered_meanwhile_is_skipped(
    app_engine: Engine, lang: str
) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", available=False)
        agent = staff(s, "Ana Agent", role="agent", senior=True)
        noise = [scored_post(s, text=f"free coins, follow me {i}", urgency=60 - i) for i in range(3)]
        assign_pending(s)
        s.commit()
        theirs = scored_post(s, text="a colleague's post", urgency=10)
        theirs.assignee_id, theirs.status = boss.id, PostStatus.ASSIGNED
        s.add(theirs)
        s.commit()
    at = open_app(agent, lang)
    keys = {c.key for c in at.checkbox}
    assert {pick_key(p.id or 0) for p in noise} <= keys
    assert pick_key(theirs.id or 0) not in keys  # an agent closes only their own posts
    for p in noise:
        at.checkbox(key=pick_key(p.id or 0)).check()
    at.run()
    at.button(key="bulk_dismiss").click().run()
    assert _messages_in(at, "bulk_bar") == [t(lang, "bulk_pick_reason")]  # no reason chosen: nothing done
    at.selectbox(key=REASON_KEY).set_value("spam").run()
    # Meanwhile the manager answers one of them.
    with Session(app_engine) as s:
        rid = s.execute(select(col(Reply.id)).where(col(Reply.post_id) == noise[0].id)).scalar_one()
        approve_reply(s, reply_id=rid, staff=s.get(Staff, boss.id), text="Hello! How can we help?")  # type: ignore[arg-type]
    at.button(key="bulk_dismiss").click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = _messages_in(at, "bulk_bar")
    assert said == [t(lang, "bulk_done", ok=2, n=3), t(lang, "bulk_skipped_changed", posts=f"#{noise[0].id}")], said
    assert [w.value for w in at.warning] == said  # beside the bar only, not at the page's top as well
    with Session(app_engine) as s:
        states = {p.id: s.get(Post, p.id).status for p in noise}  # type: ignore[union-attr]
    assert states == {noise[0].id: PostStatus.ASSIGNED, noise[1].id: PostStatus.DISMISSED,
                      noise[2].id: PostStatus.DISMISSED}  # fmt: skip
    with Session(app_engine) as s:
        assert s.get(Reply, rid).state == ReplyState.APPROVED  # type: ignore[union-attr]


@pytest.mark.parametrize("lang", ["es", "en"])
def test_a_manager_dismisses_all_shown_by_a_filter_after_confirming(app_engine: Engine, lang: str) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", available=False)
        spam = [scored_post(s, kind=PostKind.SEARCH, text=f"win an iphone {i}") for i in range(4)]
        keep = scored_post(s, text="@brand my parcel never arrived")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = boss.id
    at.session_state["lang"] = lang
    at.query_params["kind"] = "search"
    at.run()
    assert at.button(key="bulk_take_all").label == t(lang, "bulk_all", n=4)
    at.selectbox(key=REASON_KEY).set_value("other").run()
    at.button(key="bulk_take_all").click().run()
    assert t(lang, "bulk_confirm", n=4) in [w.value for w in at.warning]
    with Session(app_engine) as s:
        assert all(s.get(Post, p.id).status == PostStatus.SCORED for p in spam)  # type: ignore[union-attr]
    at.button(key="bulk_confirm").click().run()
    assert _messages_in(at, "bulk_bar")[0].startswith(t(lang, "msg_invalid", detail="")[:6])  # "other" needs a note
    at.text_input(key=NOTE_KEY).input("giveaway bots").run()
    at.button(key="bulk_take_all").click().run()
    at.button(key="bulk_confirm").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with Session(app_engine) as s:
        assert {s.get(Post, p.id).resolution_note for p in spam} == {"other: giveaway bots"}  # type: ignore[union-attr]
        assert s.get(Post, keep.id).status == PostStatus.SCORED  # type: ignore[union-attr]
    # The report stays in the bar; no keyword hit is left open, so the kind filter offers none and the rest shows.
    assert _messages_in(at, "bulk_bar") == [t(lang, "bulk_done", ok=4, n=4)]
    assert [m.value for m in at.success] == [t(lang, "bulk_done", ok=4, n=4)]
    assert _cards(at) == {f"more_{keep.id}"}


def test_an_agents_all_shown_by_this_filter_takes_only_their_own_posts(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", available=False)
        agent = staff(s, "Ana Agent", role="agent", available=False)
        posts = [scored_post(s, text=f"promo bot {i}") for i in range(4)]
        for i, post in enumerate(posts):
            post.assignee_id, post.status = (agent.id if i % 2 else boss.id), PostStatus.ASSIGNED
            s.add(post)
        s.commit()
    at = open_app(agent, "es")
    assert at.button(key="bulk_take_all").label == t("es", "bulk_all", n=2)  # four shown, two of them hers
    at.selectbox(key=REASON_KEY).set_value("spam").run()
    at.button(key="bulk_take_all").click().run()
    assert t("es", "bulk_confirm", n=2) in [w.value for w in at.warning]
    at.button(key="bulk_confirm").click().run()
    assert _messages_in(at, "bulk_bar") == [t("es", "bulk_done", ok=2, n=2)]
    with Session(app_engine) as s:
        after = {p.id: s.get(Post, p.id).status for p in posts}  # type: ignore[union-attr]
    assert after == {p.id: PostStatus.DISMISSED if i % 2 else PostStatus.ASSIGNED for i, p in enumerate(posts)}


@pytest.mark.parametrize("lang", ["es", "en"])
def test_a_keyword_hit_becomes_a_task_that_its_assignee_sees_and_marks_done(app_engine: Engine, lang: str) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        boss = staff(s, "Mara Manager", role="manager", available=False)
        agent = staff(s, "Ana Agent", role="agent", available=False)
        staff(s, "Noa Marketing", role="marketing", available=False)
        hit = scored_post(s, kind=PostKind.SEARCH, manual_only=True, text="escucha: who sells it in Lima?")
        other = scored_post(s, kind=PostKind.SEARCH, manual_only=True, text="escucha: is it vegan?")
    at = open_app(boss, lang)
    at.button(key=f"to_task_{hit.id}").click().run()
    keys = task_keys(hit.id or 0)
    options = at.selectbox(key=keys["assignee"]).options
    assert not any("Noa" in o for o in options) and any("Ana Agent" in o for o in options)
    at.button(key=f"task_create_{hit.id}").click().run()
    assert _messages_in(at, f"post_{hit.id}") == [t(lang, "task_pick")]  # beside the card: nobody chosen yet
    at.selectbox(key=keys["assignee"]).set_value(agent.id)
    at.text_input(key=keys["note"]).input("Ask sales for the Lima stockist")
    at.run()
    at.button(key=f"task_create_{hit.id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with Session(app_engine) as s:
        task = s.execute(select(Task)).scalar_one()
        assert (task.post_id, task.assignee_id, task.created_by_id) == (hit.id, agent.id, boss.id)
        assert task.due_at > utcnow() and s.get(Post, hit.id).status == PostStatus.NO_ACTION  # type: ignore[union-attr]
        assert [a.post_id for a in list_alerts(s, staff_id=agent.id or 0)] == [hit.id]
    assert t(lang, "msg_task_made", post=hit.id, task=task.id, name="Ana Agent") in [m.value for m in at.success]
    assert _cards(at) == {f"more_{other.id}"}

    mine = open_app(agent, lang)
    links = [el.proto.label for el in mine.get("page_link")]
    assert t(lang, "page_tasks_open", n=1) in links
    mine.switch_page("views/tasks.py").run()
    assert not mine.exception, [e.value for e in mine.exception]
    assert "Ask sales for the Lima stockist" in [el.value for el in mine.text]
    assert hit.text in [el.value for el in mine.text]
    mine.button(key=f"task_done_{task.id}").click().run()
    assert _messages_in(mine, f"task_{task.id}") == [t(lang, "msg_task_done", task=task.id)]
    with Session(app_engine) as s:
        done = s.get(Task, task.id)
        assert done is not None and done.done_by_id == agent.id and done.done_at is not None
    assert f"task_done_{task.id}" not in {b.key for b in mine.button}
