"""A keyword hit's own actions on its card: answered by hand on the network, or not for us.

X lets a self-serve app reply only to posts that mention or quote the account, so such a hit never offers
"approve and send" (which would fail); the person answers on the network and says so here, or closes it.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from sqlmodel import Session

from models.tables import Post, Staff
from responder.actions import InvalidReply, ReplyConflict
from responder.manual import answered_by_hand, not_for_us
from responder.permissions import Action, NotAllowed, can_on
from review_app import context
from review_app.i18n import t
from review_app.queries import QueueItem


def manual_note_key(post_id: int) -> str:
    """Return the session key of the note typed for a keyword hit's action."""
    return f"manual_note_{post_id}"


def _run(post_id: int, action: Callable[..., Post], done: str) -> None:
    """Run ``action`` on the post as the signed-in person and show, in their language, what happened."""
    lang = context.lang()
    note = str(st.session_state.get(manual_note_key(post_id), ""))
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"))
            return
        try:
            action(session, post_id=post_id, staff=me, note=note)
        except NotAllowed:
            context.flash("error", t(lang, "manual_not_allowed"))
            return
        except ReplyConflict:
            context.flash("warning", t(lang, "manual_already_closed", post=post_id))
            return
        except InvalidReply:
            context.flash("error", t(lang, "manual_invalid"))
            return
    context.flash("success", t(lang, done, post=post_id))


def _answered(post_id: int) -> None:
    _run(post_id, answered_by_hand, "msg_answered_by_hand")


def _not_for_us(post_id: int) -> None:
    _run(post_id, not_for_us, "msg_not_for_us")


def manual_actions(lang: str, item: QueueItem, me: Staff) -> None:
    """Show a keyword hit's actions (to whoever may close the post), instead of approve and send."""
    if not can_on(me, Action.DISMISS_POST, assignee_id=item.assignee_id):
        st.caption(t(lang, "manual_hint_other"))
        return
    st.caption(t(lang, "manual_hint"))
    st.text_input(t(lang, "manual_note"), key=manual_note_key(item.post_id))
    left, right, _ = st.columns([1, 1, 2])
    left.button(
        t(lang, "answered_by_hand"),
        key=f"by_hand_{item.post_id}",
        type="primary",
        on_click=_answered,
        args=(item.post_id,),
    )
    right.button(t(lang, "not_for_us"), key=f"not_for_us_{item.post_id}", on_click=_not_for_us, args=(item.post_id,))
