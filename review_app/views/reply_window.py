"""A card's word on its network's reply rules: a DM past its messaging window, and answering a comment privately.

The rules are the network's (``NetworkSpec.dm_window``, ``private_reply_window``) and the decision is
``responder.reply_window``'s; this module only says it, in the person's language, and offers what is left.
"""

from __future__ import annotations

from datetime import UTC

import streamlit as st
from sqlmodel import Session

from models.tables import Post, PostKind
from networks.registry import spec_of
from responder.reply_window import reply_verdict
from review_app import context, fmt
from review_app.i18n import t
from review_app.queries import QueueItem
from review_app.safe import md


def private_key(reply_id: int) -> str:
    """The session key of a card's "reply privately" choice."""
    return f"private_{reply_id}"


def can_send(lang: str, item: QueueItem) -> bool:
    """Say why a DM can no longer be answered, with a link to the customer's open public post; False then."""
    spec = spec_of(item.network)
    if item.kind != PostKind.DM or spec.dm_window is None:
        return True  # the common case costs no query
    with Session(context.engine()) as session:
        post = session.get(Post, item.post_id)
        verdict = reply_verdict(session, post) if post is not None else None
    if verdict is None or verdict.ok:
        return True
    closed = verdict.closed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if verdict.closed_at else "?"
    hours = int(spec.dm_window.total_seconds() // 3600)
    st.warning(t(lang, "window_closed", network=md(spec.label), hours=hours, closed=closed))
    if verdict.public_post_id is not None:
        # The queue shows one post when a link names it (?post=ID): the customer's public post, to answer there.
        st.link_button(t(lang, "window_public"), f"?post={verdict.public_post_id}")
    else:
        st.caption(t(lang, "window_no_public", network=md(fmt.network(item.network))))
    return False


def private_choice(lang: str, item: QueueItem) -> None:
    """Offer "reply privately" on a public comment where the network allows it, or say why it no longer can."""
    spec = spec_of(item.network)
    if item.reply_id is None or spec.private_reply_window is None or item.kind == PostKind.DM:
        return
    days = spec.private_reply_window.days
    with Session(context.engine()) as session:
        post = session.get(Post, item.post_id)
        verdict = reply_verdict(session, post, private=True, reply_id=item.reply_id) if post is not None else None
    if verdict is None or verdict.reason == "private_unsupported":
        return
    if verdict.reason == "private_window":
        st.caption(t(lang, "private_closed_window", days=days))
    elif verdict.reason == "private_once":
        st.caption(t(lang, "private_closed_once", network=md(spec.label)))
    else:
        st.checkbox(
            t(lang, "reply_privately"),
            key=private_key(item.reply_id),
            help=t(lang, "reply_privately_help", network=spec.label, days=days),
        )
