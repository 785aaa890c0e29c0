"""Every action for every role, through the functions that perform it: allowed roles succeed, the others are refused.

The matrix is enumerated from ``Action`` and ``Role``: a new action (or role) without a case here fails. A refusal
must come from the function itself (``NotAllowed``, or the page's own gate) and leave every table exactly as it
was: no state change and no audit row. The queue's and the admin page's button callbacks are called directly as
every role too, as a forged request would, since hiding a button is not the guard.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col
from streamlit.testing.v1 import AppTest

from knowledge.articles import ArticleDraft
from knowledge.encoder import default_encoder
from models.customers import ensure_customers
from models.knowledge import KbArticle
from models.tables import (
    AuditEvent,
    Author,
    Correction,
    CustomerNote,
    CustomerTag,
    Post,
    PostStatus,
    Reply,
    ReplyState,
    Role,
    SavedReply,
    Shift,
    SlaPolicy,
    Staff,
    Task,
    utcnow,
)
from responder.actions import approve_reply, dismiss_post, escalate_post, reject_reply, submit_reply
from responder.admin import add_shift, remove_shift, save_reply_text, set_sla_policy, update_staff
from responder.corrections import correct_post, reassign_post
from responder.customers import add_note, add_tag
from responder.knowledge_admin import save_article_as
from responder.permissions import Action, NotAllowed, can, can_on
from responder.tasks import complete_task
from review_app.i18n import t
from tests.support.desk import APP, TIMEOUT, desk_engine, run_view
from tests.support.factories import scored_post, staff

VIEWS = Path(APP).parent / "views"
UNKNOWN_ROLE = "retired"  # a role string this code does not know (an old row, a typo): it may do nothing
ROLES = [*(r.value for r in Role), UNKNOWN_ROLE]
A, M, G, K = Role.ADMIN.value, Role.MANAGER.value, Role.AGENT.value, Role.MARKETING.value

# The policy as reviewed: who may do what. ``responder.permissions`` must agree, and the functions must enforce it.
POLICY: dict[Action, set[str]] = {
    Action.SUBMIT_REPLY: {A, M, G},
    Action.APPROVE_REPLY: {A, M},
    Action.SEND_WITHOUT_APPROVAL: {A, M},
    Action.REJECT_REPLY: {A, M},
    Action.DISMISS_POST: {A, M, G},
    Action.ESCALATE_POST: {A, M, G},
    Action.REASSIGN: {A, M},
    Action.VIEW_QUEUE: {A, M, G},
    Action.VIEW_INBOX: {A, M, G},
    Action.CORRECT_LABELS: {A, M, G},
    Action.VIEW_TRENDS: {A, M, K},
    Action.EDIT_KNOWLEDGE: {A, M},
    Action.ADMIN: {A},
    Action.VIEW_CUSTOMER: {A, M, G},
    Action.EDIT_CUSTOMER: {A, M, G},
    Action.COMPLETE_TASK: {A, M, G},
}
# Actions on one post that some roles may take only on the posts assigned to them; the others act on any post.
OWN_POSTS_ONLY: dict[Action, set[str]] = {Action.DISMISS_POST: {G}, Action.ESCALATE_POST: {G}}
# The page each view action opens, and what the page says to a role that may not open it.
PAGES: dict[Action, tuple[str, str, str]] = {
    Action.VIEW_QUEUE: ("queue.py", "queue_title", "queue_not_allowed"),
    Action.VIEW_INBOX: ("inbox.py", "inbox_title", "inbox_not_allowed"),
    Action.VIEW_TRENDS: ("trends.py", "trends_title", "trends_not_allowed"),
    Action.EDIT_KNOWLEDGE: ("knowledge.py", "page_knowledge", "kb_not_allowed"),
    Action.ADMIN: ("admin.py", "admin_title", "admin_not_allowed"),
    Action.VIEW_CUSTOMER: ("customer.py", "customer_title", "customer_not_allowed"),
}
_texts = itertools.count(1)


# --- the desk every case starts from ---


@dataclass
class Target:
    """A fresh open post, assigned to the agent, with a reply waiting for approval, and a shift to remove."""

    post_id: int
    reply_id: int
    shift_id: int
    text: str


@dataclass
class Desk:
    """One staff member per role (the unknown one included), plus someone to reassign to and a saved reply."""

    engine: Engine
    people: dict[str, Staff]
    other: Staff
    saved_reply_id: int
    targets: list[Target] = field(default_factory=list)

    def target(self, assignee: Staff | None = None) -> Target:
        """Store a new post with its pending reply (each case acts on its own), assigned to the agent by default."""
        with Session(self.engine, expire_on_commit=False) as s:
            n = next(_texts)
            post = scored_post(s, text=f"post {n}: my parcel is lost")
            ensure_customers(s, [post.author_id or 0])  # as the store does for every identity
            post.assignee_id, post.status = (assignee or self.people[G]).id, PostStatus.ASSIGNED
            reply = Reply(
                post_id=post.id or 0,
                state=ReplyState.PENDING_APPROVAL,
                text="We are on it.",
                suggested_text="We are on it.",
                idempotency_key=f"authz-{n}",
            )
            shift = Shift(staff_id=self.other.id or 0, weekday=n % 7, start_minute=540, end_minute=1020)
            s.add_all([post, reply, shift])
            s.commit()
            made = Target(post_id=post.id or 0, reply_id=reply.id or 0, shift_id=shift.id or 0, text=post.text)
        self.targets.append(made)
        return made


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """The review app's own database (so pages and functions see the same rows), with the people in it."""
    default_encoder()  # loaded before any page runs: saving an article embeds it, within a page's time limit
    for engine in desk_engine(tmp_path, monkeypatch):
        with Session(engine, expire_on_commit=False) as s:
            people = {role: staff(s, f"Role {role}", role=role, ui_language="en") for role in ROLES}
            other = staff(s, "Otto Other", role=G)
            saved = SavedReply(language="en", reply_type="complaint", tone="any", text="Sorry about that.")
            s.add(saved)
            s.commit()
            yield Desk(engine=engine, people=people, other=other, saved_reply_id=saved.id or 0)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in SQLModel.metadata.sorted_tables
        }


def reply_of(s: Session, target: Target) -> Reply:
    reply = s.get(Reply, target.reply_id)
    assert reply is not None
    return reply


def post_of(s: Session, target: Target) -> Post:
    post = s.get(Post, target.post_id)
    assert post is not None
    return post


# --- the functions that perform each action, and how to see that they did ---


@dataclass(frozen=True)
class Case:
    """One call that performs an action, and the change it must have made when allowed."""

    name: str
    run: Callable[[Session, Staff, Target, Desk], object]
    done: Callable[[Session, Target, Desk], bool]
    # Roles that may do something else through the same call (an agent's submit only asks for approval).
    fallback: Action | None = None


def _saved_text(s: Session, d: Desk) -> str:
    row = s.get(SavedReply, d.saved_reply_id)
    assert row is not None
    return row.text


def _customer_of(s: Session, x: Target) -> int:
    author = s.get(Author, post_of(s, x).author_id)
    assert author is not None and author.customer_id is not None
    return author.customer_id


def _notes_of(s: Session, x: Target) -> int:
    stmt = select(func.count()).where(col(CustomerNote.customer_id) == _customer_of(s, x))
    return int(s.execute(stmt).scalar_one())


def _my_task_done(s: Session, me: Staff, x: Target) -> object:
    # A follow-up task on the target post, given to the acting person (flushed, not committed: a refusal leaves none).
    task = Task(post_id=x.post_id, assignee_id=me.id, created_by_id=me.id, note="call back", due_at=utcnow())  # type: ignore[arg-type]
    s.add(task)
    s.flush()
    return complete_task(s, task_id=task.id, staff=me)  # type: ignore[arg-type]


def _task_done(s: Session, x: Target) -> bool:
    stmt = select(func.count()).where(col(Task.post_id) == x.post_id, col(Task.done_at).is_not(None))
    return bool(s.execute(stmt).scalar_one())


CASES: dict[Action, list[Case]] = {
    Action.COMPLETE_TASK: [
        Case("complete_task", lambda s, me, x, d: _my_task_done(s, me, x), lambda s, x, d: _task_done(s, x))
    ],
    Action.EDIT_CUSTOMER: [
        Case(
            "add_note",
            lambda s, me, x, d: add_note(s, staff=me, customer_id=_customer_of(s, x), text="VIP, be kind"),
            lambda s, x, d: _notes_of(s, x) == 1,
        ),
        Case(
            "add_tag",
            lambda s, me, x, d: add_tag(s, staff=me, customer_id=_customer_of(s, x), tag="VIP"),
            lambda s, x, d: bool(
                s.execute(select(func.count()).where(col(CustomerTag.customer_id) == _customer_of(s, x))).scalar_one()
            ),
        ),
    ],
    Action.SUBMIT_REPLY: [
        Case(
            "submit_reply",
            lambda s, me, x, d: submit_reply(s, reply_id=x.reply_id, staff=me, text="Edited: we are on it."),
            lambda s, x, d: reply_of(s, x).text == "Edited: we are on it.",
        )
    ],
    Action.APPROVE_REPLY: [
        Case(
            "approve_reply",
            lambda s, me, x, d: approve_reply(s, reply_id=x.reply_id, staff=me),
            lambda s, x, d: reply_of(s, x).state == ReplyState.APPROVED,
        )
    ],
    Action.SEND_WITHOUT_APPROVAL: [
        # Submitting is approving for roles that may send without approval; for an agent it only asks for it.
        Case(
            "submit_reply approves at once",
            lambda s, me, x, d: submit_reply(s, reply_id=x.reply_id, staff=me, text="Sent as it is."),
            lambda s, x, d: reply_of(s, x).state == ReplyState.APPROVED and reply_of(s, x).approved_by_id is not None,
            fallback=Action.SUBMIT_REPLY,
        )
    ],
    Action.REJECT_REPLY: [
        Case(
            "reject_reply",
            lambda s, me, x, d: reject_reply(s, reply_id=x.reply_id, staff=me, note="wrong tone"),
            lambda s, x, d: reply_of(s, x).state == ReplyState.REJECTED,
        )
    ],
    Action.DISMISS_POST: [
        Case(
            "dismiss_post",
            lambda s, me, x, d: dismiss_post(s, post_id=x.post_id, staff=me, reason="spam"),
            lambda s, x, d: post_of(s, x).status == PostStatus.DISMISSED,
        ),
    ],
    Action.ESCALATE_POST: [
        Case(
            "escalate_post",
            lambda s, me, x, d: escalate_post(s, post_id=x.post_id, staff=me, reason="legal"),
            lambda s, x, d: post_of(s, x).status == PostStatus.ESCALATED,
        ),
    ],
    Action.REASSIGN: [
        Case(
            "reassign_post",
            lambda s, me, x, d: reassign_post(s, post_id=x.post_id, staff=me, to_staff_id=d.other.id or 0),
            lambda s, x, d: post_of(s, x).assignee_id == d.other.id,
        )
    ],
    Action.CORRECT_LABELS: [
        Case(
            "correct_post sentiment and urgency",
            lambda s, me, x, d: correct_post(s, post_id=x.post_id, staff=me, sentiment="positive", urgency=5),
            lambda s, x, d: (
                post_of(s, x).urgency == 5
                and s.execute(select(func.count()).where(col(Correction.post_id) == x.post_id)).scalar_one() == 2
            ),
        ),
        Case(
            "correct_post no reply needed",
            lambda s, me, x, d: correct_post(s, post_id=x.post_id, staff=me, needs_response=False),
            lambda s, x, d: post_of(s, x).status == PostStatus.NO_ACTION,
        ),
    ],
    Action.EDIT_KNOWLEDGE: [
        Case(
            "save_article_as",
            lambda s, me, x, d: save_article_as(
                s, staff=me, draft=ArticleDraft(slug="hours", language="en", title="Hours", answer="10 to 21.")
            ),
            lambda s, x, d: s.execute(select(KbArticle).where(col(KbArticle.slug) == "hours")).first() is not None,
        )
    ],
    Action.ADMIN: [
        Case(
            "update_staff",
            lambda s, me, x, d: update_staff(
                s,
                actor=me,
                staff_id=d.other.id or 0,
                role=G,
                capacity=7,
                languages="es",
                channels="dm",
                available=False,
            ),
            lambda s, x, d: (s.get(Staff, d.other.id) or d.other).capacity == 7,
        ),
        Case(
            "add_shift",
            lambda s, me, x, d: add_shift(
                s,
                actor=me,
                staff_id=d.other.id or 0,
                weekday=6,
                start_minute=0,
                end_minute=60,
                timezone="Europe/Madrid",
            ),
            lambda s, x, d: s.execute(select(Shift).where(col(Shift.timezone) == "Europe/Madrid")).first() is not None,
        ),
        Case(
            "remove_shift",
            lambda s, me, x, d: remove_shift(s, actor=me, shift_id=x.shift_id),
            lambda s, x, d: s.get(Shift, x.shift_id) is None,
        ),
        Case(
            "set_sla_policy",
            lambda s, me, x, d: set_sla_policy(
                s, actor=me, channel="dm", lane="other", seconds=90, business_hours=True
            ),
            lambda s, x, d: s.execute(select(col(SlaPolicy.seconds))).scalar() == 90,
        ),
        Case(
            "save_reply_text",
            lambda s, me, x, d: save_reply_text(s, actor=me, saved_reply_id=d.saved_reply_id, text="New words."),
            lambda s, x, d: _saved_text(s, d) == "New words.",
        ),
    ],
}


def audit_rows_by(engine: Engine, member: Staff) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).where(col(AuditEvent.actor) == f"staff:{member.id}")).scalar_one())


def check_case(desk: Desk, case: Case, role: str, allowed: bool, target: Target | None = None) -> None:
    """Run one case as ``role``; allowed: it did its work and left an audit row; refused: nothing changed."""
    target = target or desk.target()
    before = snapshot(desk.engine)
    member = desk.people[role]
    audits_before = audit_rows_by(desk.engine, member)
    with Session(desk.engine, expire_on_commit=False) as s:
        me = s.get(Staff, member.id)
        assert me is not None
        if allowed:
            case.run(s, me, target, desk)
        elif case.fallback is not None and can(me, case.fallback):
            case.run(s, me, target, desk)  # does the other action; checked below that it did not do this one
        else:
            with pytest.raises(NotAllowed):
                case.run(s, me, target, desk)
    with Session(desk.engine) as s:
        assert case.done(s, target, desk) is allowed, (case.name, role)
    if allowed:
        assert snapshot(desk.engine) != before
        assert audit_rows_by(desk.engine, member) > audits_before, f"{case.name} left no audit row"
    elif case.fallback is None or not can(member, case.fallback):
        assert snapshot(desk.engine) == before, f"{case.name} as {role} changed the database"
    else:
        with Session(desk.engine) as s:
            assert reply_of(s, target).approved_by_id is None
            approvals = select(func.count()).where(col(AuditEvent.action) == "reply_approved")
            assert s.execute(approvals).scalar_one() == 0


def check_page(desk: Desk, action: Action, role: str, allowed: bool) -> None:
    """Open the action's page as ``role``: the page's own gate lets it in or refuses it and shows nothing."""
    view, title, refusal = PAGES[action]
    target = desk.target()
    before = snapshot(desk.engine)
    at = run_view(view, desk.people[role])
    assert [x.value for x in at.title] == [t("en", title)]
    infos = [i.value for i in at.info]
    shown = [el.value for el in at.text]
    if allowed:
        assert t("en", refusal) not in infos
        if action == Action.VIEW_QUEUE:
            assert target.text in shown
        if action == Action.ADMIN:
            assert "Otto Other" in " ".join(e.label for e in at.expander)
    else:
        assert infos == [t("en", refusal)]
        assert target.text not in shown and not at.expander and not at.button and not at.dataframe
        assert snapshot(desk.engine) == before, f"{view} as {role} wrote to the database"


# --- the matrix ---


def test_the_policy_under_test_is_the_one_the_code_declares() -> None:
    assert set(POLICY) == set(Action), "every action needs a reviewed policy line (and cases below)"
    for action, roles in POLICY.items():
        for role in ROLES:
            assert can(Staff(name="x", email="x@x", role=role), action) is (role in roles), (action, role)


@pytest.mark.parametrize(("action", "role"), [(a, r) for a in Action for r in ROLES], ids=str)
def test_each_action_is_enforced_for_each_role(desk: Desk, action: Action, role: str) -> None:
    cases, page = CASES.get(action, []), PAGES.get(action)
    assert cases or page, f"no function or page performs {action}: add a case to this test"
    allowed = role in POLICY[action]
    for case in cases:
        check_case(desk, case, role, allowed)
    if page is not None:
        check_page(desk, action, role, allowed)


@pytest.mark.parametrize(
    ("action", "role", "owned"),
    [(a, r, o) for a in OWN_POSTS_ONLY for r in ROLES for o in (True, False)],
    ids=lambda v: {True: "owner", False: "not-owner"}.get(v, str(v)) if isinstance(v, bool) else str(v),
)
def test_post_actions_depend_on_who_owns_the_post(desk: Desk, action: Action, role: str, owned: bool) -> None:
    """Agents dismiss or escalate only what is assigned to them; managers and admins act on anything."""
    allowed = role in POLICY[action] and (owned or role not in OWN_POSTS_ONLY[action])
    for case in CASES[action]:
        target = desk.target(assignee=desk.people[role] if owned else desk.other)
        check_case(desk, case, role, allowed, target)
        with Session(desk.engine) as s:
            me = s.get(Staff, desk.people[role].id)
            post = s.get(Post, target.post_id)
            assert me is not None and post is not None
            assert can_on(me, action, assignee_id=desk.people[role].id if owned else desk.other.id) is allowed


def test_an_unassigned_post_is_nobody_s_own(desk: Desk) -> None:
    for action in OWN_POSTS_ONLY:
        assert not can_on(desk.people[G], action, assignee_id=None)
        assert can_on(desk.people[M], action, assignee_id=None)


@pytest.mark.parametrize("role", ROLES)
def test_the_overview_is_for_everyone_and_the_navigation_offers_only_allowed_pages(desk: Desk, role: str) -> None:
    at = run_view("overview.py", desk.people[role])
    assert [x.value for x in at.title] == [t("en", "overview_title")]
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.session_state["staff_id"], app.session_state["lang"] = desk.people[role].id, "en"
    app.run()
    assert not app.exception
    for action, (view, title, _) in PAGES.items():
        if role in POLICY[action]:
            app.switch_page(f"views/{view}").run()
            assert [x.value for x in app.title] == [t("en", title)]
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                app.switch_page(f"views/{view}")


# --- the pages' callbacks, called as every role (what a forged button press would do) ---


def _press(module: str, name: str, args: tuple[object, ...]) -> None:
    """The whole script of a test app: call one callback of a page module."""
    import importlib

    getattr(importlib.import_module(module), name)(*args)


@dataclass(frozen=True)
class Callback:
    """A page's button callback, the action it performs, and the widget values it reads."""

    module: str
    name: str
    action: Action
    args: Callable[[Target, Desk], tuple[Any, ...]]
    state: Callable[[Target, Desk], dict[str, Any]]


def _staff_form(x: Target, d: Desk) -> dict[str, Any]:
    sid = d.other.id
    return {
        f"role_{sid}": G,
        f"capacity_{sid}": 3,
        f"languages_{sid}": "en",
        f"channels_{sid}": "public",
        f"available_{sid}": True,
    }


def _shift_form(x: Target, d: Desk) -> dict[str, Any]:
    sid = d.other.id
    return {f"shift_day_{sid}": 2, f"shift_start_{sid}": 60, f"shift_end_{sid}": 120, f"shift_tz_{sid}": "UTC"}


Q, ADM, KB = "review_app.views.queue", "review_app.views.admin", "review_app.views.knowledge"
CALLBACKS = [
    Callback(Q, "_approve", Action.APPROVE_REPLY, lambda x, d: (x.reply_id,), lambda x, d: {}),
    Callback(
        Q,
        "_submit",
        Action.SUBMIT_REPLY,
        lambda x, d: (x.reply_id,),
        lambda x, d: {f"reply_text_{x.reply_id}": "Edited"},
    ),
    Callback(
        Q,
        "_reject",
        Action.REJECT_REPLY,
        lambda x, d: (x.reply_id,),
        lambda x, d: {f"reject_note_{x.reply_id}": "tone"},
    ),
    Callback(
        Q,
        "_dismiss",
        Action.DISMISS_POST,
        lambda x, d: (x.post_id,),
        lambda x, d: {f"dismiss_reason_{x.post_id}": "spam"},
    ),
    Callback(
        Q,
        "_reassign",
        Action.REASSIGN,
        lambda x, d: (x.post_id,),
        lambda x, d: {f"reassign_to_{x.post_id}": d.other.id},
    ),
    Callback(
        Q,
        "_correct",
        Action.CORRECT_LABELS,
        lambda x, d: (x.post_id,),
        lambda x, d: {f"correct_sentiment_{x.post_id}": "positive", f"correct_urgency_{x.post_id}": 5},
    ),
    Callback(Q, "_no_reply_needed", Action.CORRECT_LABELS, lambda x, d: (x.post_id,), lambda x, d: {}),
    Callback(
        KB,
        "_save",
        Action.EDIT_KNOWLEDGE,
        lambda x, d: (),
        lambda x, d: {"kb_f_slug": "hours", "kb_f_language": "es", "kb_f_title": "Horario", "kb_f_answer": "10-21"},
    ),
    Callback(ADM, "_save_staff", Action.ADMIN, lambda x, d: (d.other.id,), _staff_form),
    Callback(ADM, "_add_shift", Action.ADMIN, lambda x, d: (d.other.id,), _shift_form),
    Callback(ADM, "_remove_shift", Action.ADMIN, lambda x, d: (x.shift_id,), lambda x, d: {}),
    Callback(
        ADM,
        "_save_sla",
        Action.ADMIN,
        lambda x, d: (),
        lambda x, d: {"sla_channel": "dm", "sla_lane": "other", "sla_seconds": 600, "sla_business": False},
    ),
    Callback(
        ADM,
        "_save_saved_reply",
        Action.ADMIN,
        lambda x, d: (),
        lambda x, d: {"saved_pick": d.saved_reply_id, f"saved_text_{d.saved_reply_id}": "Changed."},
    ),
]


def press(desk: Desk, member: Staff, callback: Callback, target: Target) -> tuple[str, str]:
    """Call one page callback as ``member`` with its widget values set; return the one message it left."""
    at = AppTest.from_function(
        _press, args=(callback.module, callback.name, callback.args(target, desk)), default_timeout=TIMEOUT
    )
    at.session_state["staff_id"], at.session_state["lang"] = member.id, "en"
    for key, value in callback.state(target, desk).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, (callback.name, [e.value for e in at.exception])
    flashes = at.session_state["flash"]
    assert len(flashes) == 1, (callback.name, flashes)
    level, message = flashes[0]
    return str(level), str(message)


@pytest.mark.parametrize("role", ROLES)
def test_the_dismiss_callback_refuses_an_agent_on_a_colleague_s_post(desk: Desk, role: str) -> None:
    dismiss = next(c for c in CALLBACKS if c.name == "_dismiss")
    target = desk.target(assignee=desk.other)
    before = snapshot(desk.engine)
    level, message = press(desk, desk.people[role], dismiss, target)
    if role in {A, M}:
        assert level == "success", (role, message)
    else:
        assert level == "error" and message.startswith(t("en", "msg_not_allowed", detail="")), (role, message)
        assert snapshot(desk.engine) == before, f"_dismiss as {role} changed the database"


@pytest.mark.parametrize("role", ROLES)
def test_page_callbacks_refuse_roles_that_may_not_act_and_change_nothing(desk: Desk, role: str) -> None:
    member = desk.people[role]
    for callback in CALLBACKS:
        target = desk.target()
        before = snapshot(desk.engine)
        at = AppTest.from_function(
            _press, args=(callback.module, callback.name, callback.args(target, desk)), default_timeout=TIMEOUT
        )
        at.session_state["staff_id"], at.session_state["lang"] = member.id, "en"
        for key, value in callback.state(target, desk).items():
            at.session_state[key] = value
        at.run()
        assert not at.exception, (callback.name, [e.value for e in at.exception])
        flashes = at.session_state["flash"]
        assert len(flashes) == 1, (callback.name, flashes)
        level, message = flashes[0]
        if role in POLICY[callback.action]:
            assert level == "success", (callback.name, role, message)
            assert snapshot(desk.engine) != before
        else:
            assert level == "error" and message.startswith(t("en", "msg_not_allowed", detail="")), (callback.name, role)
            assert snapshot(desk.engine) == before, f"{callback.name} as {role} changed the database"
