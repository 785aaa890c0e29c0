"""My tasks: follow-ups made from keyword hits (``responder.tasks``), open ones first by due time, then done ones.

Managers and admins may look at everyone's tasks. Marking one done records who and when; the message shows
beside the task. Notes are the team's words, shown as plain text.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from sqlmodel import Session
from streamlit.errors import StreamlitAPIException

from models.tables import Role, utcnow
from responder.actions import ReplyConflict
from responder.permissions import Action, NotAllowed, can_on
from responder.tasks import TaskRow, complete_task, list_tasks
from review_app import context, fmt
from review_app.i18n import t
from review_app.safe import md, plain

EVERYONE_KEY = "tasks_everyone"
DONE_KEY = "tasks_show_done"
LIMIT = 100


def row_key(task_id: int) -> str:
    """The key of a task's row, which its messages are shown beside."""
    return f"task_{task_id}"


def _done(task_id: int) -> None:
    """Mark the task done as the signed-in person."""
    lang = context.lang()
    where = row_key(task_id)
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=where)
            return
        try:
            complete_task(session, task_id=task_id, staff=me)
        except NotAllowed:
            context.flash("error", t(lang, "task_not_yours"), where=where)
            return
        except ReplyConflict:
            context.flash("warning", t(lang, "task_already_done", task=task_id), where=where)
            return
    context.flash("success", t(lang, "msg_task_done", task=task_id), where=where)


def _due(lang: str, row: TaskRow, now: datetime) -> str:
    left = (row.due_at - now).total_seconds()
    when = row.due_at.strftime("%d/%m %H:%M UTC")
    if row.done_at is not None:
        return t(lang, "task_due_at", when=when)
    if left < 0:
        return f":red[**{t(lang, 'task_overdue', when=when, late=fmt.duration(left))}**]"
    return t(lang, "task_due_in", when=when, left=fmt.duration(left))


def _link(lang: str, row: TaskRow) -> None:
    try:
        if row.conversation_id is not None:
            st.page_link("views/conversation.py", label=t(lang, "task_open_post", post=row.post_id),
                         icon=":material/forum:", query_params={"id": str(row.conversation_id)})  # fmt: skip
        else:
            st.caption(t(lang, "task_post", post=row.post_id))
    except StreamlitAPIException:
        st.caption(t(lang, "task_post", post=row.post_id))


def _row(lang: str, row: TaskRow, now: datetime, mine: bool, may_finish: bool) -> None:
    with st.container(border=True, key=row_key(row.task_id)):
        context.show_flashes(where=row_key(row.task_id))
        if row.done_at is None:
            state = f":orange[**{t(lang, 'task_open')}**]"
        else:
            state = f":green[**{t(lang, 'task_done_state')}**]"
        parts = [state, _due(lang, row, now), t(lang, "task_from", name=md(row.created_by_name))]
        if not mine:
            parts.insert(1, t(lang, "task_for", name=md(row.assignee_name)))
        st.markdown(" · ".join(parts))
        if row.done_at is not None:
            st.caption(t(lang, "task_done_by", name=md(row.done_by_name or "—"),
                         when=row.done_at.strftime("%d/%m %H:%M UTC")))  # fmt: skip
        if row.note:
            st.caption(t(lang, "task_note_shown"))
            st.text(plain(row.note))
        st.caption(t(lang, "task_post_text", network=md(fmt.network(row.network))))
        st.text(plain(row.post_text))
        _link(lang, row)
        if row.done_at is None and may_finish:
            st.button(t(lang, "task_mark_done"), key=f"task_done_{row.task_id}", type="primary", on_click=_done,
                      args=(row.task_id,), icon=":material/task_alt:")  # fmt: skip


def render() -> None:
    """Render the tasks page."""
    lang = context.lang()
    st.title(t(lang, "tasks_title"))
    top = st.container()
    try:
        _render(lang)
    finally:
        with top:
            context.show_flashes()


def _render(lang: str) -> None:
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.COMPLETE_TASK, refused="tasks_not_allowed")
        if me is None or me.id is None:
            return
        left, right = st.columns(2)
        everyone = False
        if me.role in (Role.MANAGER, Role.ADMIN):
            everyone = left.toggle(t(lang, "tasks_everyone"), key=EVERYONE_KEY)
        show_done = right.toggle(t(lang, "tasks_show_done"), key=DONE_KEY, value=True)
        rows = list_tasks(session, assignee_id=None if everyone else me.id, include_done=show_done, limit=LIMIT)
    open_rows = sum(1 for r in rows if r.done_at is None)
    st.markdown(t(lang, "tasks_count", open=open_rows, n=len(rows)))
    if not rows:
        st.info(t(lang, "tasks_empty"))
        return
    now = utcnow()
    for row in rows:
        _row(lang, row, now, mine=row.assignee_id == me.id,
             may_finish=can_on(me, Action.COMPLETE_TASK, assignee_id=row.assignee_id))  # fmt: skip


if __name__ == "__main__":
    render()
