"""Waiting for approval: answers people submitted, with who wrote them, the diff against the suggestion, the
customer's message and the urgency; approve or reject each with a note, or several at once.

Every decision is a call into ``responder.actions`` (permissions, races, exactly-once); an approved answer is
sent at once when this app has senders, else by the worker's outbox. Texts are shown inert (``safe``, ``diff``).
"""

from __future__ import annotations

import logging

import streamlit as st
from sqlmodel import Session

from models.tables import Staff, utcnow
from responder.actions import InvalidReply, ReplyConflict, approve_reply, decide_many, reject_reply
from responder.outbox import send_one
from responder.permissions import Action, NotAllowed
from review_app import context, fmt
from review_app.approval_queries import ApprovalItem, count_waiting, waiting_for_approval
from review_app.diff import diff_html
from review_app.i18n import t, tn
from review_app.labels import code
from review_app.safe import md, plain

log = logging.getLogger(__name__)

PAGE_SIZE = 25
BULK_NOTE_KEY = "approvals_bulk_note"
BULK = "approvals_bulk"  # the bulk bar's container: its messages show in it


def card_key(reply_id: int) -> str:
    """The key of an answer's card, which its messages are shown beside."""
    return f"approval_{reply_id}"


def pick_key(reply_id: int) -> str:
    """The session key of a reply's bulk-selection checkbox."""
    return f"approval_pick_{reply_id}"


def note_key(reply_id: int) -> str:
    """The session key of a reply's approval or rejection note."""
    return f"approval_note_{reply_id}"


def _send(lang: str, reply_id: int) -> tuple[str, str]:
    """Send an approved reply now when this app can; the outbox's state machine keeps it to once."""
    senders = context.senders()
    if not senders:
        return "success", t(lang, "msg_approved_later", reply=reply_id)
    try:
        sent = send_one(context.engine(), senders, reply_id)
    except Exception as exc:
        # Left in "sending" by the outbox: it may have reached the network, so no blind retry.
        log.exception("sending reply %s failed unexpectedly", reply_id)
        return "warning", t(lang, "msg_send_crashed", reply=reply_id, detail=md(type(exc).__name__))
    level = "success" if sent.result == "sent" else "warning"
    return level, t(lang, f"msg_{sent.result}", reply=reply_id, detail=md(sent.detail))


def _decide(reply_id: int, *, approve: bool) -> None:
    """Approve (and send) or reject one answer with the note typed beside it."""
    lang = context.lang()
    note = str(st.session_state.get(note_key(reply_id), ""))
    where = card_key(reply_id)
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=where)
            return
        try:
            if approve:
                approve_reply(session, reply_id=reply_id, staff=me, note=note)
            else:
                reject_reply(session, reply_id=reply_id, staff=me, note=note)
        except NotAllowed as exc:
            context.flash("error", t(lang, "msg_not_allowed", detail=md(str(exc))), where=where)
            return
        except ReplyConflict as exc:
            context.flash("warning", t(lang, "msg_conflict", detail=md(str(exc))), where=where)
            return
        except InvalidReply as exc:
            context.flash("error", t(lang, "msg_invalid", detail=md(str(exc))), where=where)
            return
    st.session_state.pop(pick_key(reply_id), None)
    if approve:
        context.flash(*_send(lang, reply_id), where=where)
    else:
        context.flash("success", t(lang, "msg_rejected", reply=reply_id), where=where)


def _decide_selected(*, approve: bool) -> None:
    """Approve (and send) or reject every selected answer; each one is its own transaction."""
    lang = context.lang()
    chosen = [int(k.rsplit("_", 1)[1]) for k, v in st.session_state.items()
              if isinstance(k, str) and k.startswith("approval_pick_") and v is True]  # fmt: skip
    if not chosen:
        context.flash("warning", t(lang, "apr_bulk_none"), where=BULK)
        return
    note = str(st.session_state.get(BULK_NOTE_KEY, ""))
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=BULK)
            return
        try:
            outcome = decide_many(session, reply_ids=sorted(chosen), staff=me, approve=approve, note=note)
        except NotAllowed as exc:
            context.flash("error", t(lang, "msg_not_allowed", detail=md(str(exc))), where=BULK)
            return
        except InvalidReply as exc:
            context.flash("error", t(lang, "msg_invalid", detail=md(str(exc))), where=BULK)
            return
    done = [rid for rid, why in outcome.items() if why is None]
    context.flash("success" if len(done) == len(outcome) else "warning",
                  t(lang, "apr_bulk_done", ok=len(done), n=len(outcome)), where=BULK)  # fmt: skip
    for rid, why in outcome.items():
        st.session_state.pop(pick_key(rid), None)
        if why is not None:
            context.flash("warning", t(lang, "apr_bulk_refused", reply=rid, detail=md(why)), where=BULK)
    if approve:
        for rid in done:
            level, message = _send(lang, rid)
            if level != "success":
                context.flash(level, message, where=BULK)


def _card(lang: str, item: ApprovalItem, now_s: float) -> None:
    with st.container(border=True, key=card_key(item.reply_id)):
        context.show_flashes(where=card_key(item.reply_id))
        top, side = st.columns([4, 1])
        age = fmt.duration(now_s - item.submitted_at.timestamp()) if item.submitted_at else "—"
        who = md(item.author_name) if item.author_name else md(t(lang, "apr_unknown_author"))
        top.markdown(t(lang, "apr_from", name=who, age=age))
        to = md(f"@{item.customer_username}") if item.customer_username else t(lang, "nobody")
        top.caption(t(lang, "apr_for", who=to, network=md(fmt.network(item.network)),
                      kind=md(code(lang, "kind", item.kind))))  # fmt: skip
        side.markdown(f"{t(lang, 'urgency')}: **{item.urgency if item.urgency is not None else '—'}**")
        side.checkbox(t(lang, "apr_pick"), key=pick_key(item.reply_id))
        st.caption(t(lang, "apr_customer"))
        st.text(plain(item.customer_text))
        st.caption(t(lang, "apr_diff"))
        if item.text == item.suggested_text:
            st.caption(t(lang, "apr_unchanged"))
        st.html(diff_html(item.suggested_text, item.text))
        st.text_input(t(lang, "apr_note"), key=note_key(item.reply_id))
        left, right, _ = st.columns([1, 1, 3])
        left.button(t(lang, "apr_approve"), key=f"approval_ok_{item.reply_id}", type="primary",
                    on_click=_decide, args=(item.reply_id,), kwargs={"approve": True})  # fmt: skip
        right.button(t(lang, "apr_reject"), key=f"approval_no_{item.reply_id}",
                     on_click=_decide, args=(item.reply_id,), kwargs={"approve": False})  # fmt: skip


def _bulk_bar(lang: str) -> None:
    with st.container(border=True, key=BULK):
        context.show_flashes(where=BULK)
        note_col, ok_col, no_col = st.columns([3, 1, 1])
        note_col.text_input(t(lang, "apr_bulk_note"), key=BULK_NOTE_KEY)
        ok_col.button(t(lang, "apr_bulk_approve"), key="approvals_bulk_ok", on_click=_decide_selected,
                      kwargs={"approve": True})  # fmt: skip
        no_col.button(t(lang, "apr_bulk_reject"), key="approvals_bulk_no", on_click=_decide_selected,
                      kwargs={"approve": False})  # fmt: skip


def render() -> None:
    """Render the approvals page."""
    lang = context.lang()
    st.title(t(lang, "apr_title"))
    # Messages go beside the card or the bar acted on; those whose card is gone (approved, rejected) show here.
    top = st.container()
    try:
        _render(lang)
    finally:
        with top:
            context.show_flashes()


def _render(lang: str) -> None:
    with Session(context.engine(), expire_on_commit=False) as session:
        me: Staff | None = context.allowed_staff(session, lang, action=Action.APPROVE_REPLY, refused="apr_not_allowed")
        if me is None:
            return
        total = count_waiting(session)
        items = waiting_for_approval(session, limit=PAGE_SIZE)
    st.markdown(tn(lang, "apr_count", total))
    if not items:
        st.info(t(lang, "apr_empty"))
        return
    _bulk_bar(lang)
    now_s = utcnow().timestamp()
    for item in items:
        _card(lang, item, now_s)


if __name__ == "__main__":
    render()
