"""Crisis: every post the classifier flagged as a crisis, open ones first, with its kind, urgency, channel,
author, owner, age and SLA state, and a link to its conversation.

Filters live in the page address (``/crisis?network=x&kind=legal+threat&state=open&assignee=me``) like the
queue's. Text from the networks is shown with ``st.text``; everything else is escaped by ``safe.md``.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from sqlmodel import Session
from streamlit.errors import StreamlitAPIException

from classifier.lexicon import CRISIS
from models.staff import list_staff
from models.tables import Staff, utcnow
from networks.registry import NETWORKS
from responder.permissions import Action
from review_app import context, fmt
from review_app.crisis_data import STATES, CrisisFilters, CrisisRow, fetch_crisis
from review_app.i18n import t
from review_app.labels import code, crisis_kind, formatter
from review_app.queries import UNASSIGNED
from review_app.safe import md, plain
from review_app.views import url_filters
from review_app.views.queue import ADDRESS_WORDS, ASSIGNEE_ALL, ASSIGNEE_ME, dms_filter

PAGE = "crisis"
PAGE_SIZE = 50
PAGE_KEY = "crisis_page"
# The longest stretch of a post's text a row shows; the conversation has the rest.
TEXT_CHARS = 280


def _filters(lang: str, session: Session, me: Staff) -> CrisisFilters:
    """Show the filter bar (kept in the address) and return what it selects."""
    team = list_staff(session)
    names = {m.id: m.name for m in team}
    assignees = [ASSIGNEE_ALL, ASSIGNEE_ME, UNASSIGNED, *[m.id for m in team if m.id is not None]]
    labels = {
        ASSIGNEE_ALL: t(lang, "assignee_all"),
        ASSIGNEE_ME: t(lang, "assignee_me"),
        UNASSIGNED: t(lang, "assignee_unassigned"),
    }
    kinds = sorted(CRISIS)
    networks = list(NETWORKS)
    offered = {"network": networks, "kind": kinds, "state": list(STATES)}
    url_filters.load(lang, offered, assignees, ADDRESS_WORDS, page=PAGE, singles=("state",))
    cols = st.columns(4)
    choose = t(lang, "choose_options")
    chosen_networks = cols[0].multiselect(
        t(lang, "filter_network"),
        networks,
        format_func=fmt.network,
        key=url_filters.widget_key("network", lang, PAGE),
        placeholder=choose,
    )
    chosen_kinds = cols[1].multiselect(
        t(lang, "crisis_filter_kind"),
        kinds,
        format_func=lambda k: crisis_kind(lang, k),
        key=url_filters.widget_key("kind", lang, PAGE),
        placeholder=choose,
    )
    state = cols[2].selectbox(
        t(lang, "crisis_filter_state"),
        STATES,
        format_func=formatter(lang, "crisis_state"),
        key=url_filters.widget_key("state", lang, PAGE),
    )
    assignee = cols[3].selectbox(
        t(lang, "filter_assignee"),
        assignees,
        format_func=lambda v: labels.get(v) or names.get(v, str(v)),
        key=url_filters.widget_key("assignee", lang, PAGE),
    )
    url_filters.save({"network": chosen_networks, "kind": chosen_kinds},
                     None if assignee == ASSIGNEE_ALL else assignee, ADDRESS_WORDS)  # fmt: skip
    url_filters.save_singles({"state": None if state == STATES[0] else state})
    return CrisisFilters(
        networks=tuple(chosen_networks),
        kinds=tuple(chosen_kinds),
        state=str(state),
        assignee_id=None if assignee == ASSIGNEE_ALL else (me.id if assignee == ASSIGNEE_ME else assignee),
        dms_of=dms_filter(me),
    )


def sla_state(lang: str, row: CrisisRow, now: datetime) -> str:
    """The row's SLA state: overdue, due in, or (closed) what became of it."""
    if not row.is_open:
        return md(code(lang, "status", row.status))
    left = (row.due_at - now).total_seconds()
    if left < 0:
        return f":red[**{t(lang, 'overdue', late=fmt.duration(left))}**]"
    return f":orange[**{t(lang, 'due_in', left=fmt.duration(left))}**]"


def _link(lang: str, row: CrisisRow) -> None:
    """Open the conversation (or, for a post with none, its card in the queue)."""
    try:
        if row.conversation_id is not None:
            st.page_link("views/conversation.py", label=t(lang, "crisis_open_conversation"), icon=":material/forum:",
                         query_params={"id": str(row.conversation_id)})  # fmt: skip
        elif row.is_open:
            st.page_link("views/queue.py", label=t(lang, "crisis_open_post", post=row.post_id),
                         icon=":material/inbox:", query_params={"post": str(row.post_id)})  # fmt: skip
    except StreamlitAPIException:
        # A page run on its own (tests, benches) has no navigation to link into: the post's number says where.
        st.caption(t(lang, "crisis_open_post", post=row.post_id))


def _row(lang: str, row: CrisisRow, now: datetime) -> None:
    with st.container(border=True, key=f"crisis_{row.post_id}"):
        kinds = ", ".join(md(crisis_kind(lang, k)) for k in row.crisis_kinds) or md(t(lang, "crisis_kind_unknown"))
        badge = ":red-background" if row.is_open else ":gray-background"
        age = fmt.duration((now - row.created_at).total_seconds())
        head = [
            f"{badge}[**{t(lang, 'crisis')}**] **{kinds}**",
            f"{t(lang, 'urgency')}: **{row.urgency if row.urgency is not None else '—'}**",
            f"{md(fmt.network(row.network))} · {md(code(lang, 'kind', row.kind))}",
        ]
        st.markdown(" · ".join(head))
        owner = md(row.assignee_name) if row.assignee_name else t(lang, "nobody")
        author = md(row.author) if row.author else "—"
        st.markdown(" · ".join([
            f"{t(lang, 'crisis_author')}: {author}", f"{t(lang, 'assignee')}: {owner}",
            f"{t(lang, 'age')}: {age}", f"{t(lang, 'crisis_sla')}: {sla_state(lang, row, now)}",
        ]))  # fmt: skip
        text = plain(row.text)
        st.text(text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "…")
        _link(lang, row)


def render() -> None:
    """Render the crisis page."""
    lang = context.lang()
    st.title(t(lang, "crisis_title"))
    context.show_flashes()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.VIEW_QUEUE, refused="queue_not_allowed")
        if me is None:
            return
        filters = _filters(lang, session, me)
        page = max(1, int(st.session_state.get(PAGE_KEY, 1)))
        rows, total = fetch_crisis(session, filters=filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        pages = max(1, -(-total // PAGE_SIZE))
        if page > pages:
            # Fewer crises than when the page was chosen (closed, or a narrower filter): show the last page.
            page = pages
            rows, total = fetch_crisis(session, filters=filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    st.session_state[PAGE_KEY] = page
    count_col, page_col = st.columns([4, 1])
    count_col.markdown(t(lang, "crisis_count", total=total, page=page, pages=pages))
    page_col.number_input(t(lang, "page_number"), min_value=1, max_value=pages, step=1, key=PAGE_KEY)
    if not rows:
        st.success(t(lang, "crisis_empty"))
        return
    now = utcnow()
    for row in rows:
        _row(lang, row, now)


if __name__ == "__main__":
    render()
