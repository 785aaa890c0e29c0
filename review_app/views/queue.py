"""The queue: open posts that need an answer, most urgent first, with their suggested replies and actions.

Every decision is a call into ``responder.actions``, which checks permissions and races; this page only
shows what those calls say. Text from the networks is shown with ``st.text`` or escaped by ``safe.md``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import streamlit as st
from sqlmodel import Session
from streamlit.errors import StreamlitAPIException

from models.presence import EDITING, Watcher, heartbeat, watchers
from models.staff import list_staff
from models.tables import ReplyState, Role, Staff, utcnow
from responder.actions import InvalidReply, ReplyConflict, approve_reply, dismiss_post, reject_reply, submit_reply
from responder.corrections import SENTIMENTS, correct_post, reassign_post
from responder.outbox import send_one
from responder.permissions import Action, NotAllowed, can, can_on
from review_app import context, fmt
from review_app.capacity import capacity_banner
from review_app.customer_cards import CardCustomer, card_customers, card_line, card_target
from review_app.i18n import t, tn
from review_app.kb_source import show_source
from review_app.labels import code, formatter, note, number, reason
from review_app.queries import (
    ANSWER_CHOICES,
    DEFAULT_PAGE_SIZE,
    QUEUE_STATUSES,
    UNASSIGNED,
    QueueFilters,
    QueueItem,
    fetch_queue,
    filter_options,
)
from review_app.safe import md, plain
from review_app.views import bulk, url_filters
from review_app.views.lanes import manual_actions
from review_app.views.promise import confirm_line, promise_panel
from review_app.views.reply_window import can_send, private_choice, private_key

log = logging.getLogger(__name__)

PAGE_KEY = "queue_page"
CONFIRM_KEY = "confirm_reply"
# Only one card at a time shows its extra tools: every keyed widget costs render time for the whole page.
TOOLS_KEY = "tools_post"
FILTER_SIG_KEY = "queue_filter_sig"
EDITABLE_STATES = (ReplyState.SUGGESTED, ReplyState.DRAFT, ReplyState.PENDING_APPROVAL, ReplyState.REJECTED)
ASSIGNEE_ALL = 0
ASSIGNEE_ME = -2
# How the assignee choices that are not staff ids read in the page address (``?assignee=me``).
ADDRESS_WORDS = {"me": ASSIGNEE_ME, "unassigned": UNASSIGNED}
SENTIMENT_COLOURS = {"negative": "red", "neutral": "gray", "positive": "green"}
# The one-value filters' "no restriction" choice, and the crisis lane.
EVERY = "all"
LANE_CRISIS = "crisis"
# A person's answer on a card: its state's colour.
SUBMITTED_COLOURS = {ReplyState.PENDING_APPROVAL: "blue", ReplyState.REJECTED: "red", ReplyState.APPROVED: "green"}


def dms_filter(me: Staff) -> int | None:
    """Whose DMs the queue may show ``me``: an agent sees unassigned DMs and their own; managers and admins all."""
    return None if me.role in (Role.ADMIN, Role.MANAGER) else me.id


def reply_key(reply_id: int) -> str:
    """Return the session key of a reply's text area."""
    return f"reply_text_{reply_id}"


def note_key(reply_id: int) -> str:
    """Return the session key of a reply's rejection note."""
    return f"reject_note_{reply_id}"


def reason_key(post_id: int) -> str:
    """Return the session key of a post's dismissal reason."""
    return f"dismiss_reason_{post_id}"


def reassign_key(post_id: int) -> str:
    """Return the session key of a post's reassignment target."""
    return f"reassign_to_{post_id}"


def sentiment_key(post_id: int) -> str:
    """Return the session key of a post's sentiment correction."""
    return f"correct_sentiment_{post_id}"


def urgency_key(post_id: int) -> str:
    """Return the session key of a post's urgency correction."""
    return f"correct_urgency_{post_id}"


# --- actions (button callbacks: they run before the rerun renders, so the queue shows their effect) ---


def card_key(post_id: int) -> str:
    """Return the key of a post's card, which its action messages are shown beside."""
    return f"post_{post_id}"


def _act(work: Callable[[Session, Staff], str], where: str | None = None) -> None:
    """Run one action as the acting staff member and queue what happened as a message beside ``where``."""
    lang = context.lang()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=where)
            return
        try:
            context.flash("success", work(session, me), where=where)
        except NotAllowed as exc:
            context.flash("error", t(lang, "msg_not_allowed", detail=md(str(exc))), where=where)
        except ReplyConflict as exc:
            context.flash("warning", t(lang, "msg_conflict", detail=md(str(exc))), where=where)
        except InvalidReply as exc:
            context.flash("error", t(lang, "msg_invalid", detail=md(str(exc))), where=where)


def _ask_confirm(reply_id: int) -> None:
    """First click: show the exact text and where it goes; nothing is sent yet."""
    st.session_state[CONFIRM_KEY] = reply_id


def _toggle_tools(post_id: int) -> None:
    """Open the reject/dismiss/reassign/correct tools of one card, or close them."""
    st.session_state[TOOLS_KEY] = None if st.session_state.get(TOOLS_KEY) == post_id else post_id


def _cancel_confirm() -> None:
    st.session_state.pop(CONFIRM_KEY, None)


def _editing(post_id: int) -> None:
    """Tell the others that this person is typing in the post's reply."""
    with Session(context.engine()) as session:
        me = context.acting_staff(session)
        if me is not None and me.id is not None:
            heartbeat(session, staff_id=me.id, post_ids=[post_id], mode=EDITING)


def _approve(reply_id: int, where: str | None = None) -> None:
    """Second click: approve and send; the outbox's state machine makes a repeated click a no-op."""
    st.session_state.pop(CONFIRM_KEY, None)
    lang = context.lang()
    text = st.session_state.get(reply_key(reply_id))
    outcome: list[str] = []

    def work(session: Session, me: Staff) -> str:
        # None keeps what was submitted; a ticked "reply privately" sends it to the commenter's inbox.
        private = st.session_state.get(private_key(reply_id))
        approve_reply(session, reply_id=reply_id, staff=me, text=text, private=private)
        senders = context.senders()
        if not senders:
            return t(lang, "msg_approved_later", reply=reply_id)
        try:
            sent = send_one(context.engine(), senders, reply_id)
        except Exception as exc:
            # The outbox leaves such a reply in "sending": it may have reached the network, so no blind retry.
            log.exception("sending reply %s failed unexpectedly", reply_id)
            outcome.append("crashed")
            return t(lang, "msg_send_crashed", reply=reply_id, detail=md(type(exc).__name__))
        outcome.append(sent.result)
        return t(lang, f"msg_{sent.result}", reply=reply_id, detail=md(sent.detail))

    _act(work, where)
    # A send that did not go through is approved but not sent: say it as a warning, not a success.
    if outcome and outcome[0] != "sent":
        flashes = st.session_state.get(context.FLASH_KEY, [])
        if flashes:
            flashes[-1] = ("warning", *flashes[-1][1:])


def _submit(reply_id: int, where: str | None = None) -> None:
    lang = context.lang()
    text = str(st.session_state.get(reply_key(reply_id), ""))

    def work(session: Session, me: Staff) -> str:
        private = bool(st.session_state.get(private_key(reply_id), False))
        reply = submit_reply(session, reply_id=reply_id, staff=me, text=text, private=private)
        # Managers' submissions are approvals (responder.actions.submit_reply decides that).
        key = "msg_submitted" if reply.state == ReplyState.PENDING_APPROVAL else "msg_approved_later"
        return t(lang, key, reply=reply_id)

    _act(work, where)


def _reject(reply_id: int, where: str | None = None) -> None:
    lang = context.lang()
    note = str(st.session_state.get(note_key(reply_id), ""))

    def work(session: Session, me: Staff) -> str:
        reject_reply(session, reply_id=reply_id, staff=me, note=note)
        return t(lang, "msg_rejected", reply=reply_id)

    _act(work, where)


def _dismiss(post_id: int, where: str | None = None) -> None:
    lang = context.lang()
    reason = str(st.session_state.get(reason_key(post_id), ""))

    def work(session: Session, me: Staff) -> str:
        dismiss_post(session, post_id=post_id, staff=me, reason=reason)
        return t(lang, "msg_dismissed", post=post_id)

    _act(work, where)


def _reassign(post_id: int, where: str | None = None) -> None:
    lang = context.lang()
    target = st.session_state.get(reassign_key(post_id))

    def work(session: Session, me: Staff) -> str:
        if not isinstance(target, int):
            raise InvalidReply(t(lang, "reassign_pick"))
        reassign_post(session, post_id=post_id, staff=me, to_staff_id=target, reason="reassigned from the desk")
        who = session.get(Staff, target)
        return t(lang, "msg_reassigned", post=post_id, name=md(who.name if who else str(target)))

    _act(work, where)


def _correct(post_id: int, where: str | None = None) -> None:
    lang = context.lang()
    sentiment = st.session_state.get(sentiment_key(post_id))
    urgency = st.session_state.get(urgency_key(post_id))

    def work(session: Session, me: Staff) -> str:
        changed = correct_post(
            session,
            post_id=post_id,
            staff=me,
            sentiment=sentiment if isinstance(sentiment, str) else None,
            urgency=int(urgency) if isinstance(urgency, int | float) else None,
        )
        fields = ", ".join(code(lang, "field", name) for name in changed)
        return t(lang, "msg_corrected", post=post_id, fields=fields) if changed else t(lang, "msg_no_change")

    _act(work, where)


def _no_reply_needed(post_id: int, where: str | None = None) -> None:
    lang = context.lang()

    def work(session: Session, me: Staff) -> str:
        correct_post(session, post_id=post_id, staff=me, needs_response=False)
        return t(lang, "msg_corrected", post=post_id, fields=code(lang, "field", "needs_response"))

    _act(work, where)


# --- rendering ---


def _filters(lang: str, session: Session, me: Staff) -> QueueFilters:
    """Show the filter bar and return what it selects; a change of filters goes back to page 1."""
    options = filter_options(session)
    team = list_staff(session)
    names = {member.id: member.name for member in team}
    assignees = [ASSIGNEE_ALL, ASSIGNEE_ME, UNASSIGNED, *[m.id for m in team if m.id is not None]]
    labels = {
        ASSIGNEE_ALL: t(lang, "assignee_all"),
        ASSIGNEE_ME: t(lang, "assignee_me"),
        UNASSIGNED: t(lang, "assignee_unassigned"),
    }
    offered = {
        "network": options.networks,
        "kind": options.kinds,
        "language": options.languages,
        "sentiment": options.sentiments,
        "status": list(QUEUE_STATUSES),
        "lane": [LANE_CRISIS],
        "answer": list(ANSWER_CHOICES),
    }
    # A link or a reload opens the queue its address describes.
    url_filters.load(lang, offered, assignees, ADDRESS_WORDS)
    cols = st.columns(6)
    # The placeholders are Streamlit's English unless given; the keys carry the language so options re-render.
    choose = t(lang, "choose_options")
    networks = cols[0].multiselect(
        t(lang, "filter_network"),
        options.networks,
        format_func=fmt.network,
        key=f"queue_networks_{lang}",
        placeholder=choose,
    )
    kinds = cols[1].multiselect(
        t(lang, "filter_kind"),
        options.kinds,
        format_func=formatter(lang, "kind"),
        key=f"queue_kinds_{lang}",
        placeholder=choose,
    )
    languages = cols[2].multiselect(
        t(lang, "filter_language"),
        options.languages,
        format_func=formatter(lang, "language"),
        key=f"queue_languages_{lang}",
        placeholder=choose,
    )
    sentiments = cols[3].multiselect(
        t(lang, "filter_sentiment"),
        options.sentiments,
        format_func=formatter(lang, "sentiment"),
        key=f"queue_sentiments_{lang}",
        placeholder=choose,
    )
    statuses = cols[4].multiselect(
        t(lang, "filter_status"),
        list(QUEUE_STATUSES),
        format_func=formatter(lang, "status"),
        key=f"queue_statuses_{lang}",
        placeholder=choose,
    )
    assignee = cols[5].selectbox(
        t(lang, "filter_assignee"),
        assignees,
        format_func=lambda v: labels.get(v) or names.get(v, str(v)),
        # The key carries the language: with a fixed key the browser keeps the old language's labels.
        key=f"queue_assignee_{lang}",
    )
    lane_col, answer_col, _ = st.columns([1, 1, 4])
    lane = lane_col.selectbox(
        t(lang, "filter_lane"), (EVERY, LANE_CRISIS), format_func=formatter(lang, "queue_lane"),
        key=url_filters.widget_key("lane", lang),
    )  # fmt: skip
    answer = answer_col.selectbox(
        t(lang, "filter_answer"), (EVERY, *ANSWER_CHOICES), format_func=formatter(lang, "queue_answer"),
        key=url_filters.widget_key("answer", lang),
    )  # fmt: skip
    chosen = QueueFilters(
        networks=tuple(networks),
        kinds=tuple(kinds),
        languages=tuple(languages),
        sentiments=tuple(sentiments),
        statuses=tuple(statuses),
        assignee_id=None if assignee == ASSIGNEE_ALL else (me.id if assignee == ASSIGNEE_ME else assignee),
        dms_of=dms_filter(me),
        crisis_only=lane == LANE_CRISIS,
        answer=None if answer == EVERY else answer,
    )
    url_filters.save(
        {"network": networks, "kind": kinds, "language": languages, "sentiment": sentiments, "status": statuses},
        None if assignee == ASSIGNEE_ALL else assignee,
        ADDRESS_WORDS,
    )
    url_filters.save_singles({"lane": None if lane == EVERY else lane, "answer": None if answer == EVERY else answer})
    signature = hashlib.sha256(repr(chosen).encode()).hexdigest()
    if st.session_state.get(FILTER_SIG_KEY) != signature:
        st.session_state[FILTER_SIG_KEY] = signature
        st.session_state[PAGE_KEY] = 1
    return chosen


def _sla_line(lang: str, item: QueueItem, now: datetime) -> str:
    age = t(lang, "age") + f": {fmt.duration((now - item.created_at).total_seconds())}"
    left = (item.due_at - now).total_seconds()
    if left < 0:
        return f"{age} · :red[**{t(lang, 'overdue', late=fmt.duration(left))}**]"
    clock = t(lang, "due_in", left=fmt.duration(left))
    return f"{age} · " + (f":orange[**{clock}**]" if left < 15 * 60 else clock)


def _header(lang: str, item: QueueItem) -> str:
    parts = [f"**{md(fmt.network(item.network))}**", md(code(lang, "kind", item.kind))]
    who = f"**@{md(item.author_username)}**" if item.author_username else ""
    if item.author_display_name:
        who = f"{who} {md(item.author_display_name)}".strip()
    if who:
        parts.append(who)
    parts.append(f"{number(lang, fmt.count(item.author_followers))} {t(lang, 'followers')}")
    if item.author_verified:
        parts.append(f":blue[:material/verified: {t(lang, 'verified')}]")
    parts.append(t(lang, "author_history", posts=item.author_earlier_posts, replied=item.author_answered))
    return " · ".join(parts)


def _score_line(lang: str, item: QueueItem) -> str:
    parts: list[str] = []
    if item.crisis:
        parts.append(f":red-background[**{t(lang, 'crisis')}**]")
    if item.sentiment:
        colour = SENTIMENT_COLOURS.get(item.sentiment, "gray")
        probs = " · ".join(
            f"{t(lang, 'prob_' + name)} {number(lang, f'{value or 0:.2f}')}"
            for name, value in (
                ("negative", item.p_negative),
                ("neutral", item.p_neutral),
                ("positive", item.p_positive),
            )
        )
        parts.append(f"{t(lang, 'sentiment')}: :{colour}[**{md(code(lang, 'sentiment', item.sentiment))}**] ({probs})")
    if item.urgency is not None:
        parts.append(f"{t(lang, 'urgency')}: **{item.urgency}**")
    if item.language:
        parts.append(md(code(lang, "language", item.language)))
    parts.append(f"{t(lang, 'assignee')}: {md(item.assignee_name) if item.assignee_name else t(lang, 'nobody')}")
    return " · ".join(parts)


def _confirm(lang: str, item: QueueItem, where: str) -> None:
    """The second click: the exact text, where it goes, and the button that sends it."""
    assert item.reply_id is not None
    text = str(st.session_state.get(reply_key(item.reply_id), item.reply_text or ""))
    with st.container(border=True, key=f"confirm_box_{item.reply_id}"):
        st.markdown(confirm_line(lang, item))
        st.text(plain(text))
        left, right, _ = st.columns([1, 1, 3])
        left.button(
            t(lang, "confirm_button"),
            key=f"confirm_{item.reply_id}",
            type="primary",
            on_click=_approve,
            args=(item.reply_id, where),
        )
        right.button(t(lang, "cancel"), key=f"cancel_{item.reply_id}", on_click=_cancel_confirm)


def _actions(lang: str, item: QueueItem, me: Staff, where: str) -> None:
    """Show the reply editor and the buttons for one post; their messages go beside ``where``."""
    if item.reply_id is None:
        st.caption(t(lang, "no_reply"))
        if item.manual_only:
            manual_actions(lang, item, me, where)
    else:
        editable = item.reply_state in EDITABLE_STATES
        st.text_area(
            t(lang, "reply_label"),
            value=item.reply_text or "",
            key=reply_key(item.reply_id),
            disabled=not editable,
            height=90,
            on_change=_editing,
            args=(item.post_id,),
        )
        if item.submitted_by_name:
            # A person's answer, not the machine's suggestion: whose it is and where it stands.
            colour = SUBMITTED_COLOURS.get(ReplyState(item.reply_state), "gray") if item.reply_state in set(
                ReplyState) else "gray"  # fmt: skip
            st.markdown(t(lang, "answer_from", name=md(item.submitted_by_name),
                          state=f":{colour}[**{md(code(lang, 'state', item.reply_state))}**]"))  # fmt: skip
        else:
            st.caption(t(lang, "reply_state", state=md(code(lang, "state", item.reply_state))))
        show_source(lang, post_id=item.post_id, reply_text=item.reply_text)
        if item.reply_note:
            st.caption(t(lang, "reply_note", note=md(note(lang, item.reply_note))))
        if item.manual_only:
            # X forbids an automated reply to this keyword hit: the suggestion is text to copy, not to send.
            manual_actions(lang, item, me, where)
        # A network's rules (a DM's messaging window) are said here, with what is left to do, before any button.
        elif editable and can_send(lang, item):
            private_choice(lang, item)
            if st.session_state.get(CONFIRM_KEY) == item.reply_id and can(me, Action.APPROVE_REPLY):
                _confirm(lang, item, where)
            left, right, hint = st.columns([1, 1, 3])
            # Approving is for managers; agents only see what they may do (approve_reply checks it anyway).
            if can(me, Action.APPROVE_REPLY):
                left.button(
                    t(lang, "approve_send"),
                    key=f"approve_{item.reply_id}",
                    type="primary",
                    on_click=_ask_confirm,
                    args=(item.reply_id,),
                )
            else:
                hint.caption(t(lang, "agent_hint"))
            right.button(
                t(lang, "submit"),
                key=f"submit_{item.reply_id}",
                on_click=_submit,
                args=(item.reply_id, where),
            )
    st.button(
        t(lang, "more_actions"),
        key=f"more_{item.post_id}",
        on_click=_toggle_tools,
        args=(item.post_id,),
        icon=":material/more_horiz:",
    )
    if st.session_state.get(TOOLS_KEY) != item.post_id:
        return
    with st.container(border=True, key=f"tools_{item.post_id}"):
        if (
            item.reply_id is not None
            and item.reply_state == ReplyState.PENDING_APPROVAL
            and can(me, Action.REJECT_REPLY)
        ):
            st.text_input(t(lang, "reject_note"), key=note_key(item.reply_id))
            st.button(
                t(lang, "reject"),
                key=f"reject_{item.reply_id}",
                on_click=_reject,
                args=(item.reply_id, where),
            )
        # Agents close only their own posts; dismiss_post checks it again for a forged press.
        if can_on(me, Action.DISMISS_POST, assignee_id=item.assignee_id):
            st.text_input(t(lang, "dismiss_reason"), key=reason_key(item.post_id))
            st.button(t(lang, "dismiss"), key=f"dismiss_{item.post_id}", on_click=_dismiss, args=(item.post_id, where))


def reply_tools(lang: str, item: QueueItem, me: Staff, team: list[Staff], where: str) -> None:
    """The card's reply editor, its buttons and its extra tools, for another page (the conversation view)."""
    _actions(lang, item, me, where)
    _tools(lang, item, me, team, where)


def _tools(lang: str, item: QueueItem, me: Staff, team: list[Staff], where: str) -> None:
    """Reassign (managers) and correct the classifier (anyone who answers posts)."""
    may_reassign = can(me, Action.REASSIGN)
    if st.session_state.get(TOOLS_KEY) != item.post_id or not (may_reassign or can(me, Action.CORRECT_LABELS)):
        return
    with st.container(border=True, key=f"more_tools_{item.post_id}"):
        st.caption(t(lang, "more_tools"))
        if may_reassign:
            names = {m.id: m.name for m in team if m.id is not None and m.role != Role.MARKETING}
            options = [sid for sid in names if sid != item.assignee_id]
            left, right = st.columns([3, 1])
            left.selectbox(
                t(lang, "reassign_to"),
                options,
                format_func=lambda sid: names.get(sid, str(sid)),
                placeholder=t(lang, "choose_option"),
                key=reassign_key(item.post_id),
            )
            right.button(
                t(lang, "reassign"), key=f"reassign_{item.post_id}", on_click=_reassign, args=(item.post_id, where)
            )
        a, b, c = st.columns([2, 2, 2])
        current = item.sentiment if item.sentiment in SENTIMENTS else "neutral"
        a.selectbox(
            t(lang, "correct_sentiment"),
            SENTIMENTS,
            index=SENTIMENTS.index(current),
            format_func=formatter(lang, "sentiment"),
            key=sentiment_key(item.post_id),
        )
        b.number_input(
            t(lang, "correct_urgency"),
            min_value=0,
            max_value=100,
            value=item.urgency if item.urgency is not None else 0,
            step=5,
            key=urgency_key(item.post_id),
        )
        c.button(t(lang, "correct_save"), key=f"correct_{item.post_id}", on_click=_correct, args=(item.post_id, where))
        st.button(
            t(lang, "no_reply_needed"),
            key=f"no_reply_{item.post_id}",
            on_click=_no_reply_needed,
            args=(item.post_id, where),
        )


def _presence_line(lang: str, others: list[Watcher]) -> str:
    names = ", ".join(f"{md(w.name)} ({t(lang, 'mode_' + w.mode) if w.mode in ('viewing', 'editing') else md(w.mode)})"
                      for w in others)  # fmt: skip
    return f":violet[:material/visibility: {t(lang, 'watching', names=names)}]"


CONVERSATION_PAGE = "views/conversation.py"


def conversation_link(lang: str, conversation_id: int, *, waiting: int) -> None:
    """A link that opens the conversation (``/conversation?id=N``), saying how many of its messages wait."""
    label = t(lang, "conv_open", n=waiting)
    try:
        st.page_link(CONVERSATION_PAGE, label=label, icon=":material/forum:", query_params={"id": str(conversation_id)})
    except StreamlitAPIException:
        # A page run on its own (tests, benches) has no navigation to find the conversation page in: say it, no link.
        st.caption(md(label))


def _card(
    lang: str,
    item: QueueItem,
    me: Staff,
    now: datetime,
    team: list[Staff],
    others: list[Watcher],
    customer: CardCustomer | None = None,
    bulk_pick: bool = False,
) -> None:
    with st.container(border=True, key=card_key(item.post_id)):
        context.show_flashes(where=card_key(item.post_id))
        if bulk_pick:
            bulk.pick_box(lang, item, me)
        top, clock = st.columns([3, 2])
        top.markdown(_header(lang, item))
        clock.markdown(_sla_line(lang, item, now))
        if item.conversation_id is not None:
            conversation_link(lang, item.conversation_id, waiting=item.waiting)
        target = card_target(customer) if can(me, Action.VIEW_CUSTOMER) else None
        if target is not None:
            # A link button, not a markdown link: markdown on a card never renders a link (tests/worker).
            left, right = st.columns([1, 4])
            left.link_button(t(lang, "customer_of_card"), target, icon=":material/badge:")
            line = card_line(lang, customer)
            if line:
                right.markdown(line)
        if others:
            st.markdown(_presence_line(lang, others))
        st.markdown(_score_line(lang, item))
        promise_panel(lang, item)
        if item.reasons:
            st.caption(f"{t(lang, 'reasons')}: " + " · ".join(md(reason(lang, r)) for r in item.reasons))
        if item.manual_only:
            st.caption(f":orange[{t(lang, 'manual_only')}]")
        if item.parent_text:
            st.caption(t(lang, "in_reply_to"))
            st.text(plain(item.parent_text))
            st.caption(t(lang, "post_text"))
        st.text(plain(item.text))
        # Only web links: a network URL is data too, and a javascript: link must not become a button.
        if item.url and item.url.startswith(("https://", "http://")):
            st.link_button(t(lang, "open_on_network"), item.url)
        _actions(lang, item, me, card_key(item.post_id))
        _tools(lang, item, me, team, card_key(item.post_id))


def _linked_post() -> int | None:
    """The post a link points at (``?post=12``), if it names one."""
    value = st.query_params.get("post", "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _show_all() -> None:
    """Leave the one linked post for the whole queue."""
    st.query_params.pop("post", None)


def render_items(lang: str, session: Session, me: Staff, items: list[QueueItem], *, bulk_pick: bool = False) -> None:
    """Show post cards, record that ``me`` is looking at them, and say who else is (``bulk_pick``: a tick box each)."""
    ids = [i.post_id for i in items]
    assert me.id is not None
    heartbeat(session, staff_id=me.id, post_ids=ids)
    others = watchers(session, post_ids=ids, except_staff_id=me.id)
    team = list_staff(session)
    now = utcnow()
    customers = card_customers(session, [(i.post_id, i.author_id, i.text) for i in items])
    for item in items:
        _card(lang, item, me, now, team, others.get(item.post_id, []), customers.get(item.post_id), bulk_pick)


def render() -> None:
    """Render the queue page."""
    lang = context.lang()
    st.title(t(lang, "queue_title"))
    # Messages go beside the card acted on; those whose card is gone (answered, closed) show up here at the end.
    top = st.container()
    try:
        _render(lang)
    finally:
        with top:
            context.show_flashes()


def _render(lang: str) -> None:
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.VIEW_QUEUE, refused="queue_not_allowed")
        if me is None:
            return
        capacity_banner(lang, session)
        filters = _filters(lang, session, me)
        linked = _linked_post()
        if linked is not None:
            filters = replace(filters, post_id=linked)
            st.caption(t(lang, "queue_one_post", post=linked))
            st.button(t(lang, "queue_show_all"), key="queue_show_all", on_click=_show_all)
        result = fetch_queue(
            session,
            filters=filters,
            page=int(st.session_state.get(PAGE_KEY, 1)),
            page_size=DEFAULT_PAGE_SIZE,
        )
        if not context.senders():
            st.caption(t(lang, "no_senders"))
        # The page number may have shrunk (posts answered elsewhere); clamp it before the widget is drawn.
        st.session_state[PAGE_KEY] = result.page
        count_col, page_col = st.columns([4, 1])
        count_col.markdown(tn(lang, "queue_count", result.total, page=result.page, pages=result.pages))
        page_col.number_input(t(lang, "page_number"), min_value=1, max_value=result.pages, step=1, key=PAGE_KEY)
        if not result.items:
            # A bulk dismissal that took the last cards still reports here, where the bar was.
            context.show_flashes(where=bulk.WHERE)
            st.info(t(lang, "queue_empty"))
            return
        bulk.remember(result.items, filters)
        bulk.bulk_bar(lang, me, result.total, bulk.takeable(session, me, filters, result.total))
        render_items(lang, session, me, result.items, bulk_pick=True)


if __name__ == "__main__":
    render()
