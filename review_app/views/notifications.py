"""Notifications: SLA breaches, escalations to me, crisis posts, rejections of my answers and a full team.

Written by the sweeps and actions (``models.alerts``); each is worded here from its kind, in the reader's
language, and a rejection shows the manager's note as plain text.
"""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from models.alerts import KINDS, REJECTED, TASK, list_alerts, mark_all_read, mark_read, unread_count
from models.tables import Alert, utcnow
from review_app import context, fmt
from review_app.i18n import t, tn
from review_app.labels import code
from review_app.safe import md, plain

UNREAD_ONLY_KEY = "notifications_unread_only"
# The newest ones; each row costs render time, and older ones are what "mark all as read" is for.
LIMIT = 30


def _mark(alert_id: int | None) -> None:
    """Mark one notification (or, with None, all of them) as read for the signed-in person."""
    lang = context.lang()
    with Session(context.engine()) as session:
        me = context.acting_staff(session)
        if me is None or me.id is None:
            return
        if alert_id is None:
            n = mark_all_read(session, staff_id=me.id)
            session.commit()
            context.flash("success", t(lang, "ntf_marked", n=n))
        else:
            mark_read(session, alert_id=alert_id, staff_id=me.id)
            session.commit()


def message(lang: str, alert: Alert) -> str:
    """The notification in words, from its kind (stored messages are for logs and the team chat)."""
    kind = alert.kind if alert.kind in KINDS else "holding"
    return t(lang, f"ntf_{kind}", post=alert.post_id if alert.post_id is not None else "—")


def _row(lang: str, alert: Alert, now_s: float) -> None:
    with st.container(border=True, key=f"notification_{alert.id}"):
        unread = alert.read_at is None
        label = md(code(lang, "alert", alert.kind))
        age = t(lang, "ntf_ago", age=fmt.duration(now_s - alert.created_at.timestamp()))
        badge = f":red[**{label}**]" if unread else f"**{label}**"
        st.markdown(f"{badge} · {md(message(lang, alert))} · {age}")
        if alert.kind == REJECTED and alert.message:
            st.text(plain(alert.message))
        if alert.kind == TASK:
            # The post closed when it became the task: the task is where the work is.
            st.page_link("views/tasks.py", label=t(lang, "ntf_open_tasks"), icon=":material/assignment_ind:")
        elif alert.post_id is not None:
            st.page_link("views/queue.py", label=t(lang, "ntf_open", post=alert.post_id),
                         query_params={"post": str(alert.post_id)})  # fmt: skip
        if unread:
            st.button(t(lang, "ntf_mark_read"), key=f"notification_read_{alert.id}", on_click=_mark,
                      args=(alert.id,))  # fmt: skip


def render() -> None:
    """Render the notifications page."""
    lang = context.lang()
    st.title(t(lang, "ntf_title"))
    context.show_flashes()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None or me.id is None:
            st.warning(t(lang, "no_staff"))
            return
        unread = unread_count(session, staff_id=me.id)
        only_unread = bool(st.session_state.get(UNREAD_ONLY_KEY, False))
        alerts = list_alerts(session, staff_id=me.id, unread_only=only_unread, limit=LIMIT)
    left, right = st.columns([3, 1])
    left.markdown(tn(lang, "ntf_unread", unread))
    left.toggle(t(lang, "ntf_unread_only"), key=UNREAD_ONLY_KEY)
    if unread:
        right.button(t(lang, "ntf_mark_all"), key="notifications_read_all", on_click=_mark, args=(None,))
    if not alerts:
        st.info(t(lang, "ntf_empty"))
        return
    now_s = utcnow().timestamp()
    for alert in alerts:
        _row(lang, alert, now_s)


if __name__ == "__main__":
    render()
