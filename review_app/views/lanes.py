"""A keyword hit's own actions on its card: answered by hand on the network, not for us, or a task for someone.

X lets a self-serve app reply only to posts that mention or quote the account, so such a hit never offers
"approve and send" (which would fail); the person answers on the network and says so here, closes it, or turns
it into a follow-up task for a colleague (``responder.tasks``). Every message goes beside the card acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st
from sqlmodel import Session

from models.staff import list_staff
from models.tables import Post, Staff, utcnow
from responder.actions import InvalidReply, ReplyConflict
from responder.manual import answered_by_hand, not_for_us
from responder.permissions import Action, NotAllowed, can_on
from responder.tasks import convert_to_task, may_take_tasks
from review_app import context
from review_app.i18n import t
from review_app.labels import code
from review_app.queries import QueueItem
from review_app.safe import md

TASK_FORM_KEY = "task_form_post"


def manual_note_key(post_id: int) -> str:
    """Return the session key of the note typed for a keyword hit's action."""
    return f"manual_note_{post_id}"


def task_keys(post_id: int) -> dict[str, str]:
    """Return the session keys of a post's task form: assignee, note, due day and due time."""
    return {name: f"task_{name}_{post_id}" for name in ("assignee", "note", "day", "time")}


def _run(post_id: int, action: Callable[..., Post], done: str, where: str | None) -> None:
    """Run ``action`` on the post as the signed-in person and show, beside ``where``, what happened."""
    lang = context.lang()
    note = str(st.session_state.get(manual_note_key(post_id), ""))
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=where)
            return
        try:
            action(session, post_id=post_id, staff=me, note=note)
        except NotAllowed:
            context.flash("error", t(lang, "manual_not_allowed"), where=where)
            return
        except ReplyConflict:
            context.flash("warning", t(lang, "manual_already_closed", post=post_id), where=where)
            return
        except InvalidReply:
            context.flash("error", t(lang, "manual_invalid"), where=where)
            return
    context.flash("success", t(lang, done, post=post_id), where=where)


def _answered(post_id: int, where: str | None) -> None:
    _run(post_id, answered_by_hand, "msg_answered_by_hand", where)


def _not_for_us(post_id: int, where: str | None) -> None:
    _run(post_id, not_for_us, "msg_not_for_us", where)


def _toggle_task_form(post_id: int) -> None:
    """Open the card's task form, or close it."""
    st.session_state[TASK_FORM_KEY] = None if st.session_state.get(TASK_FORM_KEY) == post_id else post_id


def due_from(day: object, at: object) -> datetime | None:
    """The due time chosen in the form (UTC), or None when a part is missing."""
    if not isinstance(day, date) or not isinstance(at, time):
        return None
    return datetime.combine(day, at).replace(tzinfo=UTC)


def _make_task(post_id: int, where: str | None) -> None:
    """Turn the post into a task for the chosen person, due when the form says."""
    lang = context.lang()
    keys = task_keys(post_id)
    assignee = st.session_state.get(keys["assignee"])
    note = str(st.session_state.get(keys["note"], ""))
    due = due_from(st.session_state.get(keys["day"]), st.session_state.get(keys["time"]))
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=where)
            return
        if not isinstance(assignee, int) or due is None:
            context.flash("error", t(lang, "task_pick"), where=where)
            return
        try:
            task = convert_to_task(session, post_id=post_id, staff=me, assignee_id=assignee, due_at=due, note=note)
        except NotAllowed:
            context.flash("error", t(lang, "manual_not_allowed"), where=where)
            return
        except ReplyConflict:
            context.flash("warning", t(lang, "manual_already_closed", post=post_id), where=where)
            return
        except InvalidReply as exc:
            context.flash("error", t(lang, "msg_invalid", detail=md(str(exc))), where=where)
            return
        who = session.get(Staff, assignee)
    st.session_state.pop(TASK_FORM_KEY, None)
    name = md(who.name) if who else str(assignee)
    context.flash("success", t(lang, "msg_task_made", post=post_id, task=task.id, name=name), where=where)


def _task_form(lang: str, item: QueueItem, where: str | None) -> None:
    """Who does it, what to do, and by when (UTC); the post closes as handled by the task."""
    with Session(context.engine(), expire_on_commit=False) as session:
        team = [m for m in list_staff(session) if m.id is not None and may_take_tasks(m)]
    names = {m.id: f"{m.name} · {code(lang, 'role', m.role)}" for m in team}
    keys = task_keys(item.post_id)
    tomorrow = utcnow() + timedelta(days=1)
    with st.container(border=True, key=f"task_form_{item.post_id}"):
        st.caption(t(lang, "task_form_hint"))
        st.selectbox(t(lang, "task_assignee"), list(names), format_func=lambda sid: names.get(sid, str(sid)),
                     index=None, placeholder=t(lang, "choose_option"), key=keys["assignee"])  # fmt: skip
        st.text_input(t(lang, "task_note"), key=keys["note"])
        day, at = st.columns(2)
        day.date_input(t(lang, "task_due_day"), value=tomorrow.date(), key=keys["day"], format="DD/MM/YYYY")
        at.time_input(t(lang, "task_due_time"), value=time(tomorrow.hour, 0), key=keys["time"], step=900)
        st.button(t(lang, "task_create"), key=f"task_create_{item.post_id}", type="primary", on_click=_make_task,
                  args=(item.post_id, where))  # fmt: skip


def manual_actions(lang: str, item: QueueItem, me: Staff, where: str | None = None) -> None:
    """Show a keyword hit's actions (to whoever may close the post), instead of approve and send."""
    if not can_on(me, Action.DISMISS_POST, assignee_id=item.assignee_id):
        st.caption(t(lang, "manual_hint_other"))
        return
    st.caption(t(lang, "manual_hint"))
    st.text_input(t(lang, "manual_note"), key=manual_note_key(item.post_id))
    left, middle, right, _ = st.columns([1, 1, 1, 1])
    left.button(
        t(lang, "answered_by_hand"),
        key=f"by_hand_{item.post_id}",
        type="primary",
        on_click=_answered,
        args=(item.post_id, where),
    )
    middle.button(
        t(lang, "not_for_us"), key=f"not_for_us_{item.post_id}", on_click=_not_for_us, args=(item.post_id, where)
    )
    right.button(t(lang, "task_convert"), key=f"to_task_{item.post_id}", on_click=_toggle_task_form,
                 args=(item.post_id,), icon=":material/assignment_ind:")  # fmt: skip
    if st.session_state.get(TASK_FORM_KEY) == item.post_id:
        _task_form(lang, item, where)
