"""My inbox: the conversations assigned to the signed-in person, one card each, the one due soonest first."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from responder.permissions import Action
from review_app import context
from review_app.i18n import t
from review_app.queries import QueueFilters, fetch_queue
from review_app.views.queue import render_items

INBOX_PAGE_SIZE = 50


def render() -> None:
    """Render the inbox page."""
    lang = context.lang()
    st.title(t(lang, "inbox_title"))
    top = st.container()
    try:
        _render(lang)
    finally:
        with top:
            # What was acted on and left the inbox (answered, closed) still says how it went.
            context.show_flashes()


def _render(lang: str) -> None:
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.VIEW_INBOX, refused="inbox_not_allowed")
        if me is None:
            return
        result = fetch_queue(
            session, filters=QueueFilters(assignee_id=me.id), page_size=INBOX_PAGE_SIZE, oldest_due_first=True
        )
        st.markdown(t(lang, "inbox_count", total=result.total))
        if not result.items:
            st.info(t(lang, "inbox_empty"))
            return
        render_items(lang, session, me, result.items)


if __name__ == "__main__":
    render()
