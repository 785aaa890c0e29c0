"""What the conversation page shows, read in a few bounded queries: messages, parents, notes and case history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.conversations import OPEN_STATUSES, OWN_KINDS
from models.tables import AuditEvent, Author, Conversation, Note, Post, Reply, ReplyState, Score, Staff
from responder.conversations import require_view

# Newest messages and history lines shown; a longer conversation says how many earlier ones are left out.
MAX_MESSAGES = 50
MAX_HISTORY = 200
# How far up a reply chain the page walks to show what the first message answered.
MAX_PARENTS = 8
OURS = (ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the conversation: a stored post (theirs or the brand's) or a reply we sent or are sending."""

    at: datetime
    side: str  # customer, brand or other
    network: str
    channel: str  # the post's kind (mention, comment, dm, …); our replies take their post's
    author: str
    text: str
    post_id: int | None = None
    reply_id: int | None = None
    sentiment: str | None = None
    urgency: int | None = None
    status: str | None = None
    reply_kind: str | None = None
    reply_state: str | None = None
    model_id: str | None = None  # the exact model (base + heads version) that scored the post


@dataclass(frozen=True, slots=True)
class Parent:
    """A message above the conversation's first one; ``text`` None marks a gap (deleted or never stored)."""

    external_id: str
    text: str | None
    author: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoteLine:
    """An internal note as shown."""

    at: datetime
    staff: str
    text: str


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One recorded step of the case: who did what to which message or reply."""

    at: datetime
    actor: str
    action: str
    post_id: int | None
    reply_id: int | None
    detail: dict[str, Any]


@dataclass(slots=True)
class ConversationData:
    """Everything the conversation page renders."""

    conversation: Conversation
    customer: Author | None
    owner: str | None
    messages: list[Message] = field(default_factory=list)
    hidden: int = 0
    parents: list[Parent] = field(default_factory=list)
    notes: list[NoteLine] = field(default_factory=list)
    history: list[HistoryLine] = field(default_factory=list)
    history_hidden: int = 0
    provenance: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    current_post_id: int | None = None


def _who(author: Author | None) -> str:
    if author is None:
        return ""
    return f"@{author.username}" if author.username else author.display_name


def load_conversation(session: Session, *, conversation_id: int, staff: Staff) -> ConversationData:
    """Read one conversation for ``staff``; ``NotAllowed`` when their role may not see it, ``LookupError`` if none."""
    conv = require_view(session, conversation_id=conversation_id, staff=staff)
    customer = session.get(Author, conv.author_id) if conv.author_id else None
    owner = session.get(Staff, conv.assignee_id) if conv.assignee_id else None
    data = ConversationData(conversation=conv, customer=customer, owner=owner.name if owner else None)
    total = int(session.execute(select(func.count()).where(col(Post.conversation_ref) == conversation_id)).scalar_one())
    rows = session.execute(
        select(Post, Score, Author)
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(col(Post.conversation_ref) == conversation_id)
        .order_by(col(Post.created_at).desc(), col(Post.id).desc())
        .limit(MAX_MESSAGES)
    ).all()
    data.hidden = max(0, total - len(rows))
    posts = {post.id: post for post, _, _ in rows}
    for post, score, author in rows:
        own = post.kind in OWN_KINDS
        side = "brand" if own else ("customer" if post.author_id == conv.author_id else "other")
        data.messages.append(
            Message(
                at=_utc(post.created_at),
                side=side,
                network=post.network,
                channel=post.kind,
                author=_who(author),
                text=post.text,
                post_id=post.id,
                sentiment=score.sentiment if score else None,
                urgency=post.urgency if post.urgency is not None else (score.urgency if score else None),
                status=post.status,
                model_id=score.model_id if score else None,
            )
        )
        waiting = post.status in OPEN_STATUSES and post.needs_response is not False
        if not own and waiting and data.current_post_id is None:
            data.current_post_id = post.id  # rows come newest first
    replies = session.execute(
        select(Reply).where(col(Reply.post_id).in_(list(posts)), col(Reply.state).in_(OURS)).order_by(col(Reply.id))
    ).scalars()
    for reply in replies:
        post = posts[reply.post_id]
        at = _utc(reply.sent_at or reply.approved_at or reply.created_at)
        data.messages.append(
            Message(
                at=at,
                side="brand",
                network=post.network,
                channel=post.kind,
                author="",
                text=reply.text,
                post_id=post.id,
                reply_id=reply.id,
                reply_kind=reply.kind,
                reply_state=reply.state,
            )
        )
        if reply.state == ReplyState.SENT and reply.provenance:
            data.provenance.append((int(reply.id or 0), dict(reply.provenance)))
    data.messages.sort(key=lambda m: (m.at, m.reply_id or 0))
    first = min((p for p in posts.values()), key=lambda p: (p.created_at, p.id or 0), default=None)
    if first is not None and data.hidden == 0:
        data.parents = _parents(session, first, conversation_id)
    data.notes = _notes(session, conversation_id)
    data.history, data.history_hidden = _history(session, conversation_id)
    return data


def _parents(session: Session, first: Post, conversation_id: int) -> list[Parent]:
    """The chain the conversation's first message answers, oldest first, ending at a gap if one is missing."""
    chain: list[Parent] = []
    wanted = first.in_reply_to_external_id
    seen: set[str] = set()
    while wanted and wanted not in seen and len(chain) < MAX_PARENTS:
        seen.add(wanted)
        row = session.execute(
            select(Post, Author)
            .outerjoin(Author, col(Author.id) == col(Post.author_id))
            .where(col(Post.network) == first.network, col(Post.external_id) == wanted)
        ).first()
        if row is None:
            chain.append(Parent(external_id=wanted, text=None))
            break
        post, author = row
        if post.conversation_ref != conversation_id:
            chain.append(Parent(external_id=wanted, text=post.text, author=_who(author), at=_utc(post.created_at)))
        wanted = post.in_reply_to_external_id
    chain.reverse()
    return chain


def _notes(session: Session, conversation_id: int) -> list[NoteLine]:
    rows = session.execute(
        select(Note, col(Staff.name))
        .join(Staff, col(Staff.id) == col(Note.staff_id))
        .where(col(Note.conversation_id) == conversation_id)
        .order_by(col(Note.created_at), col(Note.id))
    ).all()
    return [NoteLine(at=_utc(n.created_at), staff=name, text=n.text) for n, name in rows]


def _history(session: Session, conversation_id: int) -> tuple[list[HistoryLine], int]:
    """The audit trail of the conversation's messages and replies, newest ``MAX_HISTORY`` lines, oldest first."""
    members = select(col(Post.id)).where(col(Post.conversation_ref) == conversation_id)
    where = col(AuditEvent.post_id).in_(members)
    total = int(session.execute(select(func.count()).select_from(AuditEvent).where(where)).scalar_one())
    rows = session.execute(
        select(AuditEvent)
        .where(where)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(MAX_HISTORY)
    ).scalars()
    lines = [
        HistoryLine(
            at=_utc(e.at),
            actor=e.actor,
            action=e.action,
            post_id=e.post_id,
            reply_id=e.reply_id,
            detail=dict(e.detail or {}),
        )
        for e in rows
    ]
    lines.reverse()
    return lines, max(0, total - len(lines))
