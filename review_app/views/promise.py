"""The promise panel of a queue card: what we promised and on what basis, the coming delay update and its stop."""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlmodel import Session

from models.tables import PostKind, Staff
from responder.care import stop_updates
from responder.permissions import NotAllowed
from review_app import context, fmt
from review_app.i18n import t
from review_app.labels import code, number
from review_app.queries import QueueItem
from review_app.safe import md


def recipient(lang: str, item: QueueItem) -> str:
    """Who a reply goes to, as the confirm box names them: their handle, their name, or 'the customer'."""
    if item.author_username:
        return f"@{item.author_username}"
    return item.author_display_name or t(lang, "confirm_unnamed")


def confirm_line(lang: str, item: QueueItem) -> str:
    """The confirm box's question: the recipient, the channel and the network."""
    return t(
        lang,
        "confirm_send_to",
        to=md(recipient(lang, item)),
        channel=md(code(lang, "kind", item.kind)),
        network=md(fmt.network(item.network)),
    )


def _basis(lang: str, basis: dict[str, Any]) -> str:
    minutes = float(basis.get("handle_s", 0)) / 60
    return t(
        lang,
        "promise_basis",
        ahead=number(lang, str(int(basis.get("ahead", 0)))),
        minutes=number(lang, f"{minutes:.1f}"),
        margin=number(lang, str(round(float(basis.get("margin", 0)) * 100))),
    )


def _stop(post_id: int, stopped: bool) -> None:
    lang = context.lang()
    with Session(context.engine(), expire_on_commit=False) as session:
        me: Staff | None = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"))
            return
        try:
            stop_updates(session, post_id=post_id, staff=me, stopped=stopped)
            session.commit()
        except NotAllowed as exc:
            context.flash("error", t(lang, "msg_not_allowed", detail=md(str(exc))))
            return
        except LookupError:
            context.flash("error", t(lang, "no_staff"))
            return
    context.flash("success", t(lang, "promise_msg_stopped" if stopped else "promise_msg_allowed"))


def promise_panel(lang: str, item: QueueItem) -> None:
    """Show the promise made to the customer (or the one the pending reply makes) and the delay-update switch."""
    if item.promised_at is not None:
        line = t(lang, "promise_made", time=fmt.clock(item.promised_at))
        if item.promise_basis and "handle_s" in item.promise_basis:
            line += " · " + _basis(lang, item.promise_basis)
        st.caption(f":violet[{line}]")
        if item.kind != PostKind.DM:
            return
        if item.updates_stopped:
            st.caption(t(lang, "promise_updates_stopped"))
        else:
            st.caption(t(lang, "promise_update_due", time=fmt.clock(item.promised_at)))
        st.button(
            t(lang, "promise_allow_updates" if item.updates_stopped else "promise_stop_updates"),
            key=f"updates_{item.post_id}",
            on_click=_stop,
            args=(item.post_id, not item.updates_stopped),
        )
    elif item.reply_promised_at is not None:
        st.caption(f":violet[{t(lang, 'promise_in_reply', time=fmt.clock(item.reply_promised_at))}]")
