"""Bulk dismissal on the queue: tick several cards (or take every card this filter shows, capped and confirmed)
and dismiss them with one reason.

``responder.bulk.dismiss_many`` does the work post by post: what the person saw of each card is sent with it,
so a post answered meanwhile is skipped and reported, not overwritten. The report shows in the bar itself.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
from sqlmodel import Session

from models.tables import Role, Staff
from responder.actions import InvalidReply
from responder.bulk import MAX_BULK, OTHER, REASONS, Outcome, Seen, dismiss_many
from responder.permissions import Action, NotAllowed, can, can_on
from review_app import context
from review_app.i18n import t
from review_app.labels import formatter
from review_app.queries import QueueFilters, QueueItem, count_queue, open_post_ids, shown_replies
from review_app.safe import md

WHERE = "bulk"  # the flash target: the bar's own container
SHOWN_KEY = "bulk_shown"  # post id -> what the card showed (reply id, reply state), this page's cards
FILTERS_KEY = "bulk_filters"  # the queue's filters as last drawn, for "all shown by this filter"
ALL_KEY = "bulk_all"  # the posts "all shown by this filter" took, waiting for the confirmation
REASON_KEY = "bulk_reason"
NOTE_KEY = "bulk_note"


def pick_key(post_id: int) -> str:
    """The session key of a card's bulk-selection checkbox."""
    return f"bulk_pick_{post_id}"


def remember(items: list[QueueItem], filters: QueueFilters) -> None:
    """Keep what this page's cards show, and its filters, for the bar's buttons (they run before the next draw)."""
    st.session_state[SHOWN_KEY] = {i.post_id: (i.reply_id, i.reply_state) for i in items}
    st.session_state[FILTERS_KEY] = filters


def pick_box(lang: str, item: QueueItem, me: Staff) -> None:
    """The card's "select" box, for whoever may dismiss this post (agents: their own)."""
    if can_on(me, Action.DISMISS_POST, assignee_id=item.assignee_id):
        st.checkbox(t(lang, "bulk_pick"), key=pick_key(item.post_id))


def _picked() -> dict[int, Seen]:
    shown: dict[int, tuple[int | None, str | None]] = st.session_state.get(SHOWN_KEY, {})
    return {pid: Seen(*seen) for pid, seen in shown.items() if st.session_state.get(pick_key(pid)) is True}


def _report(lang: str, outcome: dict[int, Outcome]) -> None:
    """Say what was dismissed and, one line per kind, what was skipped and why; clear the ticks."""
    done = [pid for pid, o in outcome.items() if o == Outcome.DISMISSED]
    level = "success" if len(done) == len(outcome) else "warning"
    context.flash(level, t(lang, "bulk_done", ok=len(done), n=len(outcome)), where=WHERE)
    for kind in (Outcome.CRISIS, Outcome.CHANGED, Outcome.CLOSED, Outcome.NOT_ALLOWED, Outcome.MISSING):
        ids = sorted(pid for pid, o in outcome.items() if o == kind)
        if ids:
            posts = ", ".join(f"#{pid}" for pid in ids)
            context.flash("warning", t(lang, f"bulk_skipped_{kind.value}", posts=posts), where=WHERE)
    for pid in outcome:
        st.session_state.pop(pick_key(pid), None)


def _dismiss(seen: dict[int, Seen]) -> None:
    lang = context.lang()
    reason = st.session_state.get(REASON_KEY)
    note = str(st.session_state.get(NOTE_KEY, ""))
    if not seen:
        context.flash("warning", t(lang, "bulk_none"), where=WHERE)
        return
    if not isinstance(reason, str):
        context.flash("error", t(lang, "bulk_pick_reason"), where=WHERE)
        return
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"), where=WHERE)
            return
        try:
            outcome = dismiss_many(session, seen=seen, staff=me, reason=reason, note=note)
        except NotAllowed as exc:
            context.flash("error", t(lang, "msg_not_allowed", detail=md(str(exc))), where=WHERE)
            return
        except InvalidReply as exc:
            context.flash("error", t(lang, "msg_invalid", detail=md(str(exc))), where=WHERE)
            return
    st.session_state.pop(NOTE_KEY, None)
    _report(lang, outcome)


def _dismiss_picked() -> None:
    """Dismiss the ticked cards."""
    _dismiss(_picked())


def mine_only(me: Staff, filters: QueueFilters) -> QueueFilters | None:
    """The filter "all shown" takes for ``me``: an agent's own posts among those shown (None: none of theirs)."""
    if me.role != Role.AGENT:
        return filters
    # An agent dismisses only their own posts: "all shown" is all of theirs that this filter shows.
    if filters.assignee_id not in (None, me.id):
        return None
    return replace(filters, assignee_id=me.id)


def takeable(session: Session, me: Staff, filters: QueueFilters, total: int) -> int:
    """How many cards "all shown by this filter" would take for ``me`` (at most ``MAX_BULK``)."""
    mine = mine_only(me, filters)
    if mine is None:
        return 0
    return min(MAX_BULK, total if mine is filters else count_queue(session, filters=mine))


def _take_all() -> None:
    """Take every card this filter shows (at most ``MAX_BULK``) as it is now, and ask for the confirmation."""
    lang = context.lang()
    filters = st.session_state.get(FILTERS_KEY)
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None or not isinstance(filters, QueueFilters):
            context.flash("error", t(lang, "no_staff"), where=WHERE)
            return
        mine = mine_only(me, filters)
        if mine is None:
            context.flash("warning", t(lang, "bulk_none"), where=WHERE)
            return
        ids = open_post_ids(session, filters=mine, limit=MAX_BULK)
        shown = shown_replies(session, post_ids=ids)
    if not ids:
        context.flash("warning", t(lang, "bulk_none"), where=WHERE)
        return
    st.session_state[ALL_KEY] = shown


def _confirm_all() -> None:
    taken: dict[int, tuple[int | None, str | None]] = st.session_state.pop(ALL_KEY, {})
    _dismiss({pid: Seen(*seen) for pid, seen in taken.items()})


def _cancel_all() -> None:
    st.session_state.pop(ALL_KEY, None)


def bulk_bar(lang: str, me: Staff, total: int, takes: int) -> None:
    """The bar above the cards: reason, note, "dismiss selected", and "all shown by this filter" (``takes`` of the
    ``total`` cards, confirmed)."""
    if not can(me, Action.DISMISS_POST):
        return
    with st.container(border=True, key="bulk_bar"):
        context.show_flashes(where=WHERE)
        reason_col, note_col = st.columns([2, 3])
        reason_col.selectbox(t(lang, "bulk_reason"), REASONS, index=None, placeholder=t(lang, "choose_option"),
                             format_func=formatter(lang, "dismiss_reason"), key=REASON_KEY)  # fmt: skip
        note_col.text_input(t(lang, "bulk_note", other=formatter(lang, "dismiss_reason")(OTHER)), key=NOTE_KEY)
        picked, everything, count = st.columns([1, 1, 1])
        # The ticks are on cards further down: the bar says how many it would take.
        count.caption(t(lang, "bulk_selected", n=len(_picked())))
        picked.button(t(lang, "bulk_dismiss"), key="bulk_dismiss", on_click=_dismiss_picked, type="primary",
                      icon=":material/delete_sweep:")  # fmt: skip
        everything.button(t(lang, "bulk_all", n=takes), key="bulk_take_all", on_click=_take_all)
        taken = st.session_state.get(ALL_KEY)
        if taken:
            capped = t(lang, "bulk_capped", cap=MAX_BULK) if total > MAX_BULK and len(taken) >= MAX_BULK else ""
            st.warning(t(lang, "bulk_confirm", n=len(taken)) + capped)
            ok, cancel, _ = st.columns([1, 1, 2])
            ok.button(t(lang, "bulk_confirm_button", n=len(taken)), key="bulk_confirm", type="primary",
                      on_click=_confirm_all)  # fmt: skip
            cancel.button(t(lang, "cancel"), key="bulk_cancel", on_click=_cancel_all)
