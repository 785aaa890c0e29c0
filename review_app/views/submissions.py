"""My submissions: the answers I submitted for approval, what became of them, and the managers' notes."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from models.tables import ReplyState, utcnow
from responder.permissions import Action
from review_app import context, fmt
from review_app.approval_queries import my_submissions, submission_counts
from review_app.i18n import t
from review_app.labels import code, note
from review_app.safe import md, plain

LIMIT = 50
STATE_COLOURS = {ReplyState.REJECTED: "red", ReplyState.SENT: "green", ReplyState.FAILED: "red"}


def render() -> None:
    """Render the submissions page."""
    lang = context.lang()
    st.title(t(lang, "sub_title"))
    context.show_flashes()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.SUBMIT_REPLY, refused="sub_not_allowed")
        if me is None or me.id is None:
            return
        counts = submission_counts(session, staff_id=me.id)
        items = my_submissions(session, staff_id=me.id, limit=LIMIT)
    if not items:
        st.info(t(lang, "sub_empty"))
        return
    listed = " · ".join(f"{code(lang, 'state', state)} {n}" for state, n in sorted(counts.items()))
    st.markdown(t(lang, "sub_counts", counts=listed))
    now_s = utcnow().timestamp()
    for item in items:
        with st.container(border=True, key=f"submission_{item.reply_id}"):
            colour = STATE_COLOURS.get(ReplyState(item.state), "blue") if item.state in set(ReplyState) else "gray"
            age = fmt.duration(now_s - item.submitted_at.timestamp()) if item.submitted_at else "—"
            st.markdown(f":{colour}[**{md(code(lang, 'state', item.state))}**] · {t(lang, 'sub_submitted', age=age)}")
            if item.note:
                st.caption(t(lang, "sub_note"))
                st.text(plain(note(lang, item.note)))
            st.caption(t(lang, "sub_customer"))
            st.text(plain(item.customer_text))
            st.caption(t(lang, "sub_yours"))
            st.text(plain(item.text))
            if item.state in (ReplyState.REJECTED, ReplyState.PENDING_APPROVAL):
                st.page_link("views/queue.py", label=t(lang, "sub_open_post"), query_params={"post": str(item.post_id)})


if __name__ == "__main__":
    render()
