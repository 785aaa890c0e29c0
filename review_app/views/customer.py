"""The customer page (``/customer?id=N``): one person across networks, their conversations, cases, answers and
ratings, sentiment over time, notes and tags, and the identities that may be them.

Every change is a call into ``responder.customers``, which checks the permission again. Names and texts come from
the networks: shown with ``st.text`` or escaped by ``safe.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st
from sqlmodel import Session

from models.customers import customer_of_author
from models.tables import PostStatus, Staff
from responder.customers import CustomerError, add_note, add_tag, link_identity, remove_tag, unlink_identity
from responder.permissions import Action, NotAllowed, can
from review_app import context, fmt
from review_app.customer_data import MAX_POSTS, Conversation, CustomerPage, Identity, find_customers, load_customer
from review_app.i18n import t
from review_app.labels import DAY_FORMAT, HOUR_FORMAT, chart_locale, code, number
from review_app.safe import md, plain
from review_app.views.queue import conversation_link, dms_filter

SEARCH_KEY = "customer_search"
TAG_KEY = "customer_new_tag"
NOTE_KEY = "customer_new_note"
# Conversations drawn open; the rest are listed folded, so a long history stays quick to render.
OPEN_CONVERSATIONS = 3
SHOWN_CONVERSATIONS = 10
MESSAGES_PER_CONVERSATION = 12
# Open cases drawn as cards; the rest are counted (each is one card in the queue anyway).
SHOWN_CASES = 10


def _when(when: object) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if hasattr(when, "strftime") else str(when)


def _act(work: Callable[[Session, Staff], str]) -> None:
    """Run one change as the signed-in person and queue what happened as a message."""
    lang = context.lang()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            context.flash("error", t(lang, "no_staff"))
            return
        try:
            message = work(session, me)
            session.commit()
            context.flash("success", message)
        except (NotAllowed, CustomerError) as exc:
            session.rollback()
            context.flash("error", t(lang, "customer_msg_error", detail=md(str(exc))))


def _link(customer_id: int, author_id: int, basis: str) -> None:
    lang = context.lang()
    _act(lambda s, me: (link_identity(s, staff=me, customer_id=customer_id, author_id=author_id, basis=basis),
                        t(lang, "customer_msg_linked"))[1])  # fmt: skip


def _unlink(author_id: int) -> None:
    lang = context.lang()
    _act(lambda s, me: (unlink_identity(s, staff=me, author_id=author_id), t(lang, "customer_msg_unlinked"))[1])


def _tag(customer_id: int) -> None:
    lang = context.lang()
    text = str(st.session_state.get(TAG_KEY, ""))
    _act(lambda s, me: (add_tag(s, staff=me, customer_id=customer_id, tag=text), t(lang, "customer_msg_tagged"))[1])
    st.session_state[TAG_KEY] = ""


def _untag(customer_id: int, tag: str) -> None:
    lang = context.lang()
    _act(lambda s, me: (remove_tag(s, staff=me, customer_id=customer_id, tag=tag), t(lang, "customer_msg_untagged"))[1])


def _note(customer_id: int) -> None:
    lang = context.lang()
    text = str(st.session_state.get(NOTE_KEY, ""))
    _act(lambda s, me: (add_note(s, staff=me, customer_id=customer_id, text=text), t(lang, "customer_msg_noted"))[1])
    st.session_state[NOTE_KEY] = ""


def _param(name: str) -> int | None:
    value = st.query_params.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _who(identity: Identity) -> str:
    handle = f"**@{md(identity.username)}**" if identity.username else ""
    return f"{handle} {md(identity.display_name)}".strip() or f"#{identity.author_id}"


def _identities(lang: str, page: CustomerPage, editable: bool) -> None:
    st.subheader(t(lang, "customer_identities"))
    for identity in page.identities:
        left, right = st.columns([5, 1])
        parts = [f"**{md(fmt.network(identity.network))}**", _who(identity)]
        parts.append(f"{number(lang, fmt.count(identity.followers))} {t(lang, 'followers')}")
        if identity.verified:
            parts.append(f":blue[:material/verified: {t(lang, 'verified')}]")
        parts.append(t(lang, "customer_identity_posts", posts=identity.posts))
        left.markdown(" · ".join(parts))
        if editable and len(page.identities) > 1:
            right.button(
                t(lang, "customer_unlink"),
                key=f"unlink_{identity.author_id}",
                on_click=_unlink,
                args=(identity.author_id,),
            )


def _tags_and_notes(lang: str, page: CustomerPage, editable: bool) -> None:
    tags_col, notes_col = st.columns(2)
    with tags_col:
        st.subheader(t(lang, "customer_tags"))
        if not page.tags:
            st.caption(t(lang, "customer_no_tags"))
        for i, tag in enumerate(page.tags):
            a, b = st.columns([4, 1])
            a.markdown(f":orange-background[{md(tag)}]")
            if editable:
                b.button(
                    "✕",
                    key=f"untag_{i}",
                    help=t(lang, "customer_tag_remove", tag=md(tag)),
                    on_click=_untag,
                    args=(page.customer_id, tag),
                )
        if editable:
            st.text_input(t(lang, "customer_tag_new"), key=TAG_KEY, max_chars=64)
            st.button(t(lang, "customer_tag_add"), key="customer_tag_add", on_click=_tag, args=(page.customer_id,))
    with notes_col:
        st.subheader(t(lang, "customer_notes"))
        st.caption(t(lang, "customer_notes_hint"))
        if not page.notes:
            st.caption(t(lang, "customer_no_notes"))
        for at, name, text in page.notes:
            st.caption(f"{_when(at)} · {md(name)}")
            st.text(plain(text))
        if editable:
            st.text_area(t(lang, "customer_note_new"), key=NOTE_KEY, height=80, max_chars=4000)
            st.button(t(lang, "customer_note_add"), key="customer_note_add", on_click=_note, args=(page.customer_id,))


def _open_cases(lang: str, page: CustomerPage) -> None:
    st.subheader(t(lang, "customer_open_cases"))
    for ref, n in sorted(page.references.items(), key=lambda kv: -kv[1]):
        if n > 1:
            st.markdown(f":violet[:material/receipt_long: {t(lang, 'customer_wrote_about', n=n, ref=md(ref))}]")
    if not page.open_cases:
        st.caption(t(lang, "customer_no_open"))
    if len(page.open_cases) > SHOWN_CASES:
        st.caption(t(lang, "customer_more", n=len(page.open_cases) - SHOWN_CASES))
    for message in page.open_cases[:SHOWN_CASES]:
        with st.container(border=True, key=f"case_{message.post_id}"):
            st.caption(
                f"{_when(message.at)} · **{md(fmt.network(message.network))}** · {md(code(lang, 'kind', message.kind))}"
                f" · {md(code(lang, 'status', message.status))}"
            )
            st.text(plain(message.text))
            st.markdown(f"[{t(lang, 'customer_open_in_queue')}](queue?post={message.post_id})")


def _conversation(lang: str, conv: Conversation, names: dict[int, str]) -> None:
    # The newest messages of a long thread; the conversation itself (conv's view) has them all.
    earlier = len(conv.messages) - MESSAGES_PER_CONVERSATION
    if earlier > 0:
        st.caption(t(lang, "customer_earlier", n=earlier))
    for m in conv.messages[-MESSAGES_PER_CONVERSATION:]:
        who = t(lang, "customer_ours") if m.ours else names.get(m.author_id or -1, "")
        parts = [
            _when(m.at),
            f"**{md(who)}**",
            md(code(lang, "kind", m.kind) if not m.ours else code(lang, "reply_kind", m.kind)),
        ]
        if m.sentiment:
            parts.append(md(code(lang, "sentiment", m.sentiment)))
        if m.urgency is not None and not m.ours:
            parts.append(f"{t(lang, 'urgency')}: {m.urgency}")
        st.caption(" · ".join(parts))
        st.text(plain(m.text))


# A message still waits for us while it is in one of these states (the others are ends: replied, dismissed, …).
_WAITING = frozenset({PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED})


def _conversations(lang: str, page: CustomerPage) -> None:
    st.subheader(t(lang, "customer_conversations"))
    if page.truncated:
        st.caption(t(lang, "customer_truncated", n=MAX_POSTS))
    if not page.conversations:
        st.caption(t(lang, "customer_no_conversations"))
    names = {i.author_id: (f"@{i.username}" if i.username else i.display_name) for i in page.identities}
    for i, conv in enumerate(page.conversations[:SHOWN_CONVERSATIONS]):
        channel = code(lang, "channel", conv.channel)
        label = (f"{fmt.network(conv.network)} · {channel} · {_when(conv.last_at)} · "
                 f"{t(lang, 'customer_messages', n=len(conv.messages))}")  # fmt: skip
        with st.expander(md(label), expanded=i < OPEN_CONVERSATIONS), st.container(key=f"conv_{i}"):
            if conv.conversation_id is not None:
                conversation_link(
                    lang,
                    conv.conversation_id,
                    waiting=sum(1 for m in conv.messages if not m.ours and m.status in _WAITING),
                )
            _conversation(lang, conv, names)
    older = page.conversations[SHOWN_CONVERSATIONS:]
    if older:
        # One table for the older ones: a long history stays one element, not hundreds.
        st.caption(t(lang, "customer_more", n=len(older)))
        frame = pd.DataFrame(
            {
                code(lang, "column", "day"): [_when(c.last_at) for c in older],
                code(lang, "column", "network"): [fmt.network(c.network) for c in older],
                code(lang, "column", "channel"): [code(lang, "channel", c.channel) for c in older],
                code(lang, "column", "posts"): [len(c.messages) for c in older],
                t(lang, "customer_last_message"): [plain(c.messages[-1].text)[:200] for c in older],
            }
        )
        st.dataframe(frame, hide_index=True, width="stretch", height=240)


def _answers(lang: str, page: CustomerPage) -> None:
    st.subheader(t(lang, "customer_answers"))
    if not page.answers:
        st.caption(t(lang, "customer_no_answers"))
        return
    frame = pd.DataFrame(
        {
            code(lang, "column", "day"): [_when(a.sent_at) for a in page.answers],
            code(lang, "column", "network"): [fmt.network(a.network) for a in page.answers],
            code(lang, "column", "answers"): [plain(a.text) for a in page.answers],
            t(lang, "customer_csat"): [f"{a.csat}/{a.scale}" if a.csat is not None else "—" for a in page.answers],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def _sentiment(lang: str, page: CustomerPage) -> None:
    if not page.sentiment:
        return
    st.subheader(t(lang, "customer_sentiment"))
    frame = pd.DataFrame(
        {
            "at": [at for at, _, _, _ in page.sentiment],
            "network": [fmt.network(n) for _, n, _, _ in page.sentiment],
            "sentiment": [code(lang, "sentiment", s) for _, _, s, _ in page.sentiment],
            "balance": [b for _, _, _, b in page.sentiment],
        }
    )
    # A history within two days reads by the hour; a longer one by the day (names from the locale either way).
    span = max(frame["at"]) - min(frame["at"])
    axis_format = HOUR_FORMAT if span.total_seconds() < 2 * 86400 else DAY_FORMAT
    chart = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("at:T", title=None, axis=alt.Axis(format=axis_format)),
            y=alt.Y("balance:Q", title=t(lang, "customer_balance"), scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("network:N", title=code(lang, "column", "network")),
            tooltip=[
                alt.Tooltip("at:T", title=code(lang, "column", "hour"), format=HOUR_FORMAT),
                alt.Tooltip("network:N", title=code(lang, "column", "network")),
                alt.Tooltip("sentiment:N", title=code(lang, "column", "sentiment")),
            ],
        )
        .properties(height=220)
        .configure(locale=chart_locale(lang))
    )
    st.altair_chart(chart, width="stretch")


def _suggestions(lang: str, page: CustomerPage, editable: bool) -> None:
    st.subheader(t(lang, "customer_suggestions"))
    st.caption(t(lang, "customer_suggestions_hint"))
    if not page.suggestions:
        st.caption(t(lang, "customer_no_suggestions"))
    for s in page.suggestions:
        evidence = []
        if s.same_name:
            evidence.append(t(lang, "customer_same_name"))
        if s.shared_references:
            evidence.append(t(lang, "customer_shared_refs", refs=", ".join(f"#{r}" for r in s.shared_references)))
        basis = "; ".join([*(["same name"] if s.same_name else []), *(f"order #{r}" for r in s.shared_references)])
        with st.container(border=True, key=f"suggest_{s.author_id}"):
            left, right = st.columns([5, 1])
            handle = f"**@{md(s.username)}**" if s.username else ""
            who = f"{handle} {md(s.display_name)}".strip() or f"#{s.author_id}"
            left.markdown(f"**{md(fmt.network(s.network))}** · {who} · " + " · ".join(md(e) for e in evidence))
            if editable:
                right.button(
                    t(lang, "customer_link"),
                    key=f"link_{s.author_id}",
                    type="primary",
                    on_click=_link,
                    args=(page.customer_id, s.author_id, basis),
                )


def _links(lang: str, page: CustomerPage) -> None:
    if not page.links:
        return
    st.subheader(t(lang, "customer_links"))
    for at, action, who, author, src, dst in page.links:
        st.caption(
            t(lang, "customer_link_row", when=_when(at), who=md(who), action=t(lang, f"customer_action_{action}"),
              author=author, src=src, dst=dst)
        )  # fmt: skip


def _search(lang: str, session: Session) -> None:
    st.info(t(lang, "customer_pick"))
    query = st.text_input(t(lang, "customer_search"), key=SEARCH_KEY, max_chars=100)
    if not query:
        return
    found = find_customers(session, query)
    if not found:
        st.caption(t(lang, "customer_search_none", query=md(query)))
    for customer_id, author in found:
        handle = f"@{author.username}" if author.username else author.display_name
        label = f"{fmt.network(author.network)} · {handle} · {author.display_name}"
        # A relative link: it works whatever path the desk is served under.
        st.markdown(f"[{md(label)}](customer?id={customer_id})")


def render() -> None:
    """Render the customer page."""
    lang = context.lang()
    st.title(t(lang, "customer_title"))
    context.show_flashes()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.VIEW_CUSTOMER, refused="customer_not_allowed")
        if me is None:
            return
        customer_id = _param("id")
        author_id = _param("author")
        if customer_id is None and author_id is not None:
            # A card whose author has no customer yet (stored before customers existed) gets one here.
            customer_id = customer_of_author(session, author_id)
            session.commit()
        if customer_id is None:
            _search(lang, session)
            return
        page = load_customer(session, customer_id, dms_of=dms_filter(me))
        if page is None:
            st.warning(t(lang, "customer_missing", id=customer_id))
            return
        if not page.identities:
            st.info(t(lang, "customer_moved"))
        editable = can(me, Action.EDIT_CUSTOMER)
        names = [i.display_name or i.username for i in page.identities]
        if names:
            st.markdown(f"### {md(names[0])} · #{page.customer_id}")
        _identities(lang, page, editable)
        _tags_and_notes(lang, page, editable)
        _open_cases(lang, page)
        _conversations(lang, page)
        _answers(lang, page)
        _sentiment(lang, page)
        _suggestions(lang, page, editable)
        _links(lang, page)


if __name__ == "__main__":
    render()
