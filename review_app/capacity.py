"""The full-team banner: when nobody who could take work has room, the desk says so and lists the backlog."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from models.tables import utcnow
from responder.overflow import team_capacity, unassigned_backlog
from review_app import fmt
from review_app.i18n import t
from review_app.labels import code
from review_app.safe import md, plain

BACKLOG_SHOWN = 20


def capacity_banner(lang: str, session: Session) -> bool:
    """Show the banner and the unassigned backlog, oldest first, when the whole team is full; say if shown."""
    now = utcnow()
    room = team_capacity(session, now=now)
    if not room.full:
        return False
    if room.people:
        st.warning(t(lang, "cap_full", people=room.people, load=room.load, capacity=room.capacity, n=room.unassigned,
                     policy=code(lang, "overflow", room.policy)))  # fmt: skip
    else:
        st.warning(t(lang, "cap_nobody", n=room.unassigned))
    if room.unassigned:
        with st.expander(t(lang, "cap_backlog"), expanded=False):
            for post in unassigned_backlog(session, limit=BACKLOG_SHOWN):
                age = fmt.duration((now - post.created_at).total_seconds())
                st.markdown(md(t(lang, "cap_waiting", post=post.id, age=age)) + " · "
                            + md(fmt.network(post.network)) + " · " + md(code(lang, "kind", post.kind)))  # fmt: skip
                st.text(plain(post.text[:280]))
    return True
