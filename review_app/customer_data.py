"""What the customer page shows, read in a bounded number of queries whatever the size of the database.

``conversations_of_authors`` is the one place that groups a person's posts into conversations; when the
conversation table lands it becomes a call to that feature's function of the same name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from models.customers import OPEN_STATUSES, authors_of_customers
from models.store import clean_text
from models.tables import (
    Author,
    Customer,
    CustomerLink,
    CustomerNote,
    CustomerTag,
    Post,
    PostKind,
    Reply,
    ReplyKind,
    ReplyState,
    Satisfaction,
    Score,
    Staff,
)
from responder.link_suggestions import LinkSuggestion, suggest_links
from responder.references import references

# The newest posts a page reads for one person; a customer with more sees these and a note saying so.
MAX_POSTS = 500
MAX_NOTES = 50
MAX_LINKS = 50


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Identity:
    """One network identity of the customer."""

    author_id: int
    network: str
    username: str
    display_name: str
    followers: int
    verified: bool
    posts: int


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation: the customer's post, or a reply we sent."""

    post_id: int
    network: str
    kind: str
    text: str
    at: datetime
    ours: bool
    author_id: int | None = None
    status: str | None = None
    sentiment: str | None = None
    urgency: int | None = None
    balance: float | None = None  # positive minus negative probability, when scored


@dataclass(frozen=True, slots=True)
class Conversation:
    """A thread the customer took part in: a DM thread or a public thread, oldest message first."""

    key: str
    network: str
    channel: str  # "dm" or "public"
    messages: list[Message]
    conversation_id: int | None = None  # the stored conversation (``/conversation?id=N``), once threaded

    @property
    def last_at(self) -> datetime:
        """The time of the newest message."""
        return max(m.at for m in self.messages)


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply we sent to the customer, and the satisfaction score they gave for that post, if any."""

    post_id: int
    network: str
    text: str
    sent_at: datetime
    csat: int | None
    # The scale the answer was given on: 5 (satisfaction) or 10 (the promoter question, an admin's switch).
    scale: int = 5


@dataclass(frozen=True, slots=True)
class CustomerPage:
    """Everything the customer page shows about one person."""

    customer_id: int
    identities: list[Identity]
    conversations: list[Conversation]
    open_cases: list[Message]
    answers: list[Answer]
    sentiment: list[tuple[datetime, str, str, float]]  # (time, network, sentiment, positive - negative)
    tags: list[str]
    notes: list[tuple[datetime, str, str]]  # (time, staff name, text)
    links: list[tuple[datetime, str, str, int, int, int]]  # (time, action, staff name, author, from, to)
    suggestions: list[LinkSuggestion] = field(default_factory=list)
    references: dict[str, int] = field(default_factory=dict)  # order number -> how many posts name it
    truncated: bool = False


def _identities(session: Session, author_ids: list[int]) -> list[Identity]:
    counts = dict(
        session.execute(
            select(col(Post.author_id), func.count())
            .where(col(Post.author_id).in_(author_ids))
            .group_by(col(Post.author_id))
        ).all()
    )
    authors = session.execute(select(Author).where(col(Author.id).in_(author_ids)).order_by(col(Author.id))).scalars()
    return [
        Identity(
            author_id=a.id,
            network=a.network,
            username=a.username,
            display_name=a.display_name,
            followers=a.followers_count,
            verified=a.verified,
            posts=int(counts.get(a.id, 0)),
        )
        for a in authors
        if a.id is not None
    ]


def _thread_key(network: str, post_id: int, conversation_id: str | None, parent_id: int | None,
                reply_to: str | None) -> str:  # fmt: skip
    # A DM thread is the network's conversation id; a public thread is its conversation id on X, or the root of
    # its parent chain; a post with neither is a thread of its own.
    if conversation_id:
        return f"{network}:{conversation_id}"
    if parent_id is not None:
        return f"{network}:parent:{parent_id}"
    if reply_to:
        return f"{network}:ext:{reply_to}"
    return f"{network}:post:{post_id}"


def _private_for(dms_of: int | None) -> list[Any]:
    """The WHERE clause that hides DMs owned by someone other than ``dms_of`` (none when it is None)."""
    if dms_of is None:
        return []
    return [or_(col(Post.kind) != PostKind.DM, col(Post.assignee_id).is_(None), col(Post.assignee_id) == dms_of)]


def conversations_of_authors(
    session: Session, author_ids: Sequence[int], *, limit: int = MAX_POSTS, dms_of: int | None = None
) -> list[Conversation]:
    """Return the conversations the given identities took part in, newest first, with our sent replies in them.

    ``dms_of`` (an agent's id) leaves out the direct messages given to someone else, as the queue does.
    """
    if not author_ids:
        return []
    # Columns, not ORM rows: a post's raw payload and its other columns would cost more than the page itself.
    rows = session.execute(
        select(
            col(Post.id),
            col(Post.network),
            col(Post.kind),
            col(Post.text),
            col(Post.created_at),
            col(Post.author_id),
            col(Post.status),
            col(Post.urgency),
            col(Post.conversation_id),
            col(Post.parent_id),
            col(Post.in_reply_to_external_id),
            col(Post.conversation_ref),
            col(Score.sentiment),
            col(Score.p_positive),
            col(Score.p_negative),
        )
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .where(col(Post.author_id).in_(list(author_ids)), *_private_for(dms_of))
        .order_by(col(Post.created_at).desc(), col(Post.id).desc())
        .limit(limit)
    ).all()
    keys: dict[int, tuple[str, str]] = {}
    threads: dict[str, list[Message]] = defaultdict(list)
    meta: dict[str, tuple[str, str]] = {}
    stored: dict[str, int] = {}
    for (post_id, network, kind, text, at, author_id, status, urgency, conversation_id, parent_id, reply_to,
         conversation_ref, sentiment, p_pos, p_neg) in rows:  # fmt: skip
        # The stored conversation when the post was threaded (models/conversations.py); the thread's ids otherwise.
        if conversation_ref is not None:
            key = f"conversation:{conversation_ref}"
            stored[key] = conversation_ref
        else:
            key = _thread_key(network, post_id, conversation_id, parent_id, reply_to)
        keys[post_id] = (key, network)
        meta.setdefault(key, (network, "dm" if kind == PostKind.DM else "public"))
        threads[key].append(
            Message(
                post_id=post_id,
                network=network,
                kind=kind,
                text=text,
                at=_utc(at),
                ours=False,
                author_id=author_id,
                status=status,
                sentiment=sentiment,
                urgency=urgency,
                balance=float(p_pos) - float(p_neg) if p_pos is not None and p_neg is not None else None,
            )
        )
    if keys:
        sent = session.execute(
            select(
                col(Reply.post_id), col(Reply.kind), col(Reply.text), col(Reply.sent_at), col(Reply.updated_at)
            ).where(col(Reply.post_id).in_(list(keys)), col(Reply.state) == ReplyState.SENT)
        ).all()
        for post_id, kind, text, sent_at, updated_at in sent:
            key, network = keys[post_id]
            threads[key].append(
                Message(
                    post_id=post_id, network=network, kind=kind, text=text, at=_utc(sent_at or updated_at), ours=True
                )
            )
    out = [
        Conversation(
            key=k,
            network=meta[k][0],
            channel=meta[k][1],
            messages=sorted(v, key=lambda m: (m.at, m.ours)),
            conversation_id=stored.get(k),
        )
        for k, v in threads.items()
    ]
    out.sort(key=lambda c: c.last_at, reverse=True)
    return out


def _answers(session: Session, author_ids: list[int]) -> list[Answer]:
    rows = session.execute(
        select(
            col(Reply.text),
            col(Reply.sent_at),
            col(Reply.updated_at),
            col(Post.id),
            col(Post.network),
            col(Satisfaction.score),
            col(Satisfaction.scale),
        )
        .join(Post, col(Post.id) == col(Reply.post_id))
        .outerjoin(Satisfaction, col(Satisfaction.post_id) == col(Post.id))
        .where(
            col(Post.author_id).in_(author_ids),
            col(Reply.state) == ReplyState.SENT,
            col(Reply.kind) == ReplyKind.ANSWER,
        )
        .order_by(col(Reply.sent_at).desc())
        .limit(100)
    ).all()
    return [
        Answer(
            post_id=post_id,
            network=network,
            text=text,
            sent_at=_utc(sent_at or updated_at),
            csat=score,
            scale=scale or 5,
        )
        for text, sent_at, updated_at, post_id, network, score, scale in rows
    ]


def load_customer(
    session: Session, customer_id: int, *, with_suggestions: bool = True, dms_of: int | None = None
) -> CustomerPage | None:
    """Return what the customer page shows for ``customer_id``; None when there is no such customer."""
    if session.get(Customer, customer_id) is None:
        return None
    author_ids = authors_of_customers(session, [customer_id]).get(customer_id, [])
    conversations = conversations_of_authors(session, author_ids, dms_of=dms_of)
    messages = [m for c in conversations for m in c.messages if not m.ours]
    open_cases = sorted((m for m in messages if m.status in OPEN_STATUSES), key=lambda m: m.at, reverse=True)
    refs: dict[str, int] = {}
    for m in messages:
        for ref in references(m.text):
            refs[ref] = refs.get(ref, 0) + 1
    tags = list(
        session.execute(
            select(col(CustomerTag.tag))
            .where(col(CustomerTag.customer_id) == customer_id)
            .order_by(col(CustomerTag.tag))
        ).scalars()
    )
    notes = [
        (_utc(at), name or "?", text)
        for at, name, text in session.execute(
            select(col(CustomerNote.at), col(Staff.name), col(CustomerNote.text))
            .outerjoin(Staff, col(Staff.id) == col(CustomerNote.staff_id))
            .where(col(CustomerNote.customer_id) == customer_id)
            .order_by(col(CustomerNote.at).desc())
            .limit(MAX_NOTES)
        ).all()
    ]
    links = [
        (_utc(at), action, name or "?", int(author), int(src), int(dst))
        for at, action, name, author, src, dst in session.execute(
            select(
                col(CustomerLink.at),
                col(CustomerLink.action),
                col(Staff.name),
                col(CustomerLink.author_id),
                col(CustomerLink.from_customer_id),
                col(CustomerLink.to_customer_id),
            )
            .outerjoin(Staff, col(Staff.id) == col(CustomerLink.staff_id))
            .where(
                (col(CustomerLink.from_customer_id) == customer_id) | (col(CustomerLink.to_customer_id) == customer_id)
            )
            .order_by(col(CustomerLink.id).desc())
            .limit(MAX_LINKS)
        ).all()
    ]
    return CustomerPage(
        customer_id=customer_id,
        identities=_identities(session, author_ids) if author_ids else [],
        conversations=conversations,
        open_cases=open_cases,
        answers=_answers(session, author_ids) if author_ids else [],
        sentiment=[
            (m.at, m.network, m.sentiment, m.balance) for m in messages if m.sentiment and m.balance is not None
        ],
        tags=tags,
        notes=notes,
        links=links,
        suggestions=suggest_links(session, customer_id=customer_id, texts=[m.text for m in messages])
        if with_suggestions
        else [],
        references=refs,
        truncated=len(messages) >= MAX_POSTS,
    )


def find_customers(session: Session, query: str, *, limit: int = 20) -> list[tuple[int, Author]]:
    """Return (customer id, identity) pairs whose handle or display name contains ``query`` (case-insensitive)."""
    needle = query.strip().lower()
    # A character the store never writes (NUL, a lone surrogate) matches nothing; PostgreSQL would refuse it.
    if not needle or clean_text(needle) != needle:
        return []
    rows = session.execute(
        select(Author)
        .where(
            col(Author.customer_id).is_not(None),
            (func.lower(col(Author.username)).contains(needle, autoescape=True))
            | (func.lower(col(Author.display_name)).contains(needle, autoescape=True)),
        )
        .order_by(col(Author.id))
        .limit(limit)
    ).scalars()
    return [(int(a.customer_id), a) for a in rows if a.customer_id is not None]
