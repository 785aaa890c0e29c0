"""One conversation (``/conversation?id=N``): every message in order, the reply box, internal notes, the case history.

The reply box is the queue card's own editor and buttons (``queue.reply_tools``) on the conversation's newest
message waiting for us, so the next action is always there. Texts from the networks go through ``plain``/``md``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from sqlmodel import Session

from ground.clock import aware
from models.staff import list_staff
from models.tables import Staff, utcnow
from responder.actions import InvalidReply
from responder.conversations import add_note
from responder.permissions import Action, NotAllowed
from review_app import context, fmt
from review_app.conversation_data import ConversationData, Message, load_conversation
from review_app.i18n import t
from review_app.labels import code
from review_app.queries import QueueFilters, fetch_queue
from review_app.safe import md, plain
from review_app.views.queue import SENTIMENT_COLOURS, reply_tools

NOTE_KEY = "conv_note_text"
SIDE_COLOURS = {"customer": "blue", "brand": "green", "other": "gray"}


def _when(at: datetime) -> str:
    """A message's time, the same in both languages (digits only), in UTC like the rest of the desk."""
    return aware(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def conversation_key(conversation_id: int) -> str:
    """The key of the conversation's block, which action messages are shown beside."""
    return f"conversation_{conversation_id}"


def _linked() -> int | None:
    value = st.query_params.get("id", "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _add_note(conversation_id: int) -> None:
    """Store the typed note (a button callback); it never leaves the desk."""
    lang = context.lang()
    where = conversation_key(conversation_id)
    text = str(st.session_state.get(NOTE_KEY, ""))
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=where)
            return
        try:
            add_note(session, conversation_id=conversation_id, staff=me, text=text)
        except NotAllowed:
            context.flash("error", t(lang, "conv_not_allowed"), where=where)
            return
        except InvalidReply as exc:
            context.flash("error", t(lang, "msg_invalid", detail=md(str(exc))), where=where)
            return
    st.session_state[NOTE_KEY] = ""
    context.flash("success", t(lang, "conv_note_added"), where=where)


def _meta(lang: str, m: Message) -> str:
    side = t(lang, f"conv_from_{m.side}")
    parts = [f":{SIDE_COLOURS.get(m.side, 'gray')}[**{side}**]", _when(m.at)]
    parts.append(md(fmt.network(m.network)))
    parts.append(md(code(lang, "kind", m.channel)))
    if m.author:
        parts.append(f"**{md(m.author)}**")
    if m.reply_id is not None:
        kind = code(lang, "reply_kind", m.reply_kind)
        parts.append(md(t(lang, "conv_reply_state", kind=kind, state=code(lang, "state", m.reply_state))))
    else:
        if m.sentiment:
            colour = SENTIMENT_COLOURS.get(m.sentiment, "gray")
            parts.append(f"{t(lang, 'sentiment')}: :{colour}[{md(code(lang, 'sentiment', m.sentiment))}]")
        if m.urgency is not None:
            parts.append(f"{t(lang, 'urgency')}: **{m.urgency}**")
        if m.status:
            parts.append(md(code(lang, "status", m.status)))
        if m.model_id:
            parts.append(md(t(lang, "model_scored_by", model=m.model_id)))
    return " · ".join(parts)


def _messages(lang: str, data: ConversationData) -> None:
    st.subheader(t(lang, "conv_messages"))
    if data.hidden:
        st.caption(t(lang, "conv_earlier", n=data.hidden))
    if data.parents:
        with st.container(border=True, key="conv_parents"):
            st.caption(t(lang, "conv_parents"))
            for parent in data.parents:
                if parent.text is None:
                    st.warning(t(lang, "conv_gap", id=md(parent.external_id)), icon=":material/link_off:")
                    continue
                if parent.author:
                    st.caption(f"**{md(parent.author)}**")
                st.text(plain(parent.text))
    for m in data.messages:
        key = f"conv_msg_r{m.reply_id}" if m.reply_id is not None else f"conv_msg_p{m.post_id}"
        with st.container(border=True, key=key):
            st.markdown(_meta(lang, m))
            st.text(plain(m.text))


def _reply_box(lang: str, session: Session, me: Staff, data: ConversationData) -> None:
    st.subheader(t(lang, "conv_reply_box"))
    where = conversation_key(data.conversation.id or 0)
    if data.current_post_id is None:
        st.caption(t(lang, "conv_nothing_waiting"))
        return
    page = fetch_queue(session, filters=QueueFilters(post_id=data.current_post_id), page_size=1)
    if not page.items:
        st.caption(t(lang, "conv_nothing_waiting"))
        return
    reply_tools(lang, page.items[0], me, list_staff(session), where)


def _notes(lang: str, data: ConversationData) -> None:
    st.subheader(t(lang, "conv_notes"))
    st.caption(t(lang, "conv_notes_hint"))
    if not data.notes:
        st.caption(t(lang, "conv_no_notes"))
    for n in data.notes:
        with st.container(border=True):
            st.caption(f"**{md(n.staff)}** · {_when(n.at)}")
            st.text(plain(n.text))
    st.text_area(t(lang, "conv_note_label"), key=NOTE_KEY, height=80)
    st.button(t(lang, "conv_note_add"), key="conv_note_add", on_click=_add_note, args=(data.conversation.id,))


def _history(lang: str, data: ConversationData, names: dict[int, str]) -> None:
    st.subheader(t(lang, "conv_history"))
    if not data.history:
        st.caption(t(lang, "conv_no_history"))
    lines = []
    for h in data.history:
        actor = h.actor
        if actor.startswith("staff:") and actor[6:].isdigit():
            actor = names.get(int(actor[6:]), actor)
        target = f" · #{h.post_id}" if h.post_id else ""
        if h.reply_id:
            target += f" · ↩{h.reply_id}"
        lines.append(f"- {_when(h.at)} · **{md(code(lang, 'event', h.action))}** · {md(actor)}{target}")
    if lines:
        st.markdown("\n".join(lines))
    for reply_id, prov in data.provenance:
        approver = prov.get("approved_by") or prov.get("approver") or "—"
        edited = prov.get("edited")
        st.caption(
            t(lang, "conv_provenance", reply=reply_id, model=md(str(prov.get("model_id") or "—")),
              approver=md(str(approver)), edited=t(lang, "conv_yes" if edited else "conv_no"))
        )  # fmt: skip


def render() -> None:
    """Render the conversation named by ``?id=N``."""
    lang = context.lang()
    st.title(t(lang, "conv_title"))
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.VIEW_INBOX, refused="conv_not_allowed")
        if me is None:
            return
        conversation_id = _linked()
        if conversation_id is None:
            st.info(t(lang, "conv_missing"))
            return
        try:
            data = load_conversation(session, conversation_id=conversation_id, staff=me)
        except LookupError:
            st.info(t(lang, "conv_not_found", id=conversation_id))
            return
        except NotAllowed:
            st.warning(t(lang, "conv_not_allowed"))
            return
        conv = data.conversation
        who = md(f"@{data.customer.username}" if data.customer and data.customer.username else "")
        if data.customer and data.customer.display_name:
            who = f"{who} {md(data.customer.display_name)}".strip()
        st.markdown(t(lang, "conv_customer", who=who or t(lang, "conv_unknown_author")))
        st.markdown(
            t(lang, "conv_header", network=md(fmt.network(conv.network)), kind=code(lang, "conv_kind", conv.kind),
              status=code(lang, "conv_status", conv.status), owner=md(data.owner) if data.owner else t(lang, "nobody"))
        )  # fmt: skip
        if conv.first_unanswered_at is not None:
            waited = (utcnow() - aware(conv.first_unanswered_at)).total_seconds()
            st.caption(t(lang, "conv_waiting_since", since=fmt.duration(waited)))
        with st.container(key=conversation_key(conversation_id)):
            context.show_flashes(where=conversation_key(conversation_id))
            _messages(lang, data)
            _reply_box(lang, session, me, data)
        _notes(lang, data)
        names = {m.id: m.name for m in list_staff(session) if m.id is not None}
        _history(lang, data, names)
    # Anything left (a message for a card this page does not show) goes at the end rather than nowhere.
    context.show_flashes()


if __name__ == "__main__":
    render()
