"""Threading: every stored post joins its conversation (a DM thread, or one customer's part of a public thread).

A conversation is unique by (network, thread_key). The key is made from ids only, never from text, so hostile,
huge or empty texts thread like any other. Two workers storing messages of one new thread both upsert the same
key and end with one row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from models.tables import Author, Conversation, ConversationKind, ConversationStatus, Post, PostStatus, utcnow

POSTS: Table = Post.__table__  # type: ignore[attr-defined]
CONVERSATIONS: Table = Conversation.__table__  # type: ignore[attr-defined]

# Posts written by the brand itself: they join the conversation they answer, never start one of their own.
OWN_KINDS = frozenset({"own", "page_post"})
# The conversation.thread_key column's length (models/tables.py).
KEY_MAX = 300
# A post in one of these states still waits for us.
OPEN_STATUSES = (PostStatus.NEW, PostStatus.SCORED, PostStatus.ASSIGNED)


@dataclass(frozen=True, slots=True)
class Threadable:
    """What threading needs to know of one post: ids, never text."""

    post_id: int
    network: str
    kind: str
    is_public: bool
    external_id: str
    conversation_id: str | None
    in_reply_to: str | None
    author_id: int | None
    author_external_id: str | None
    created_at: datetime


def thread_key(post: Threadable) -> tuple[str, str]:
    """Return the conversation kind and key of a customer's post (see ``_thread_key``), at most 300 characters.

    Ids run to 255 characters (Instagram's), so a public key of two ids may not fit its column: a long key is
    replaced by its digest, the same for every message of the thread, so the upsert still finds one row.
    """
    kind, key = _thread_key(post)
    if len(key) > KEY_MAX:
        key = f"{key.split(':', 1)[0]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return kind, key


def _thread_key(post: Threadable) -> tuple[str, str]:
    """Return the conversation kind and key of a customer's post, however long.

    A DM joins the customer's DM thread with the brand (one per customer and network); a public post joins its
    customer's part of the thread it belongs to (X ``conversation_id``, the Facebook post a comment is on), or
    starts one at itself. A post whose author is unknown is a conversation of its own.
    """
    if not post.is_public or post.kind == "dm":
        if post.author_external_id:
            return ConversationKind.DM, f"dm:{post.author_external_id}"
        if post.conversation_id:
            return ConversationKind.DM, f"dm:c:{post.conversation_id}"
        return ConversationKind.DM, f"dm:p:{post.external_id}"
    root = post.conversation_id or post.in_reply_to or post.external_id
    who = post.author_external_id or f"?{post.external_id}"
    return ConversationKind.PUBLIC, f"pub:{root}:{who}"


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(CONVERSATIONS)
    return sqlite.insert(CONVERSATIONS)


def _load(session: Session, post_ids: Sequence[int]) -> list[Threadable]:
    stmt = (
        select(
            POSTS.c.id,
            POSTS.c.network,
            POSTS.c.kind,
            POSTS.c.is_public,
            POSTS.c.external_id,
            POSTS.c.conversation_id,
            POSTS.c.in_reply_to_external_id,
            POSTS.c.author_id,
            col(Author.external_id),
            POSTS.c.created_at,
        )
        .outerjoin(Author.__table__, col(Author.id) == POSTS.c.author_id)  # type: ignore[attr-defined]
        .where(POSTS.c.id.in_(post_ids))
        .order_by(POSTS.c.id)
    )
    return [Threadable(*row) for row in session.execute(stmt).all()]


def upsert_conversations(session: Session, wanted: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Insert or touch the conversations ``wanted`` ((network, key) → row) and return their ids.

    A new message reopens a closed conversation; its SLA clock keeps the oldest unanswered message's time.
    Rows go in key order, so two workers upserting overlapping sets lock them in the same order.
    """
    if not wanted:
        return {}
    table = CONVERSATIONS
    stmt = _insert(session)
    new_first = stmt.excluded.first_unanswered_at
    set_ = {
        "last_message_at": case(
            (stmt.excluded.last_message_at > table.c.last_message_at, stmt.excluded.last_message_at),
            else_=table.c.last_message_at,
        ),
        "first_unanswered_at": case(
            (table.c.first_unanswered_at.is_(None), new_first),
            (new_first.is_(None), table.c.first_unanswered_at),
            (new_first < table.c.first_unanswered_at, new_first),
            else_=table.c.first_unanswered_at,
        ),
        "status": case((new_first.is_(None), table.c.status), else_=ConversationStatus.OPEN.value),
    }
    stmt = stmt.on_conflict_do_update(index_elements=["network", "thread_key"], set_=set_).returning(
        table.c.id, table.c.network, table.c.thread_key
    )
    rows = [wanted[k] for k in sorted(wanted)]
    return {(network, key): cid for cid, network, key in session.execute(stmt, rows).all()}


def thread_posts(session: Session, post_ids: Sequence[int]) -> int:
    """Give each of ``post_ids`` (just stored) its conversation, creating or reopening it; return how many joined.

    The brand's own posts join the conversation of the post they answer (or, for a DM, of the thread they are
    in) when that one is stored; otherwise they stay outside any conversation.
    """
    if not post_ids:
        return 0
    posts = _load(session, post_ids)
    now = utcnow()
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    keyed: dict[int, tuple[str, str]] = {}
    for post in posts:
        if post.kind in OWN_KINDS:
            continue
        kind, key = thread_key(post)
        keyed[post.post_id] = (post.network, key)
        row = wanted.get((post.network, key))
        if row is None:
            wanted[(post.network, key)] = {
                "network": post.network, "kind": str(kind), "thread_key": key, "author_id": post.author_id,
                "assignee_id": None, "status": ConversationStatus.OPEN.value, "first_unanswered_at": post.created_at,
                "last_message_at": post.created_at, "created_at": now,
            }  # fmt: skip
        else:
            row["first_unanswered_at"] = min(row["first_unanswered_at"], post.created_at)
            row["last_message_at"] = max(row["last_message_at"], post.created_at)
    ids = upsert_conversations(session, wanted)
    links = [{"pid": pid, "cid": ids[k]} for pid, k in keyed.items() if k in ids]
    # The batch's own customer posts count as stored parents for the brand's posts in the same batch.
    batch_parents = {(p.network, p.external_id): ids[keyed[p.post_id]] for p in posts if p.post_id in keyed}
    batch_threads = {
        (p.network, p.conversation_id or ""): ids[keyed[p.post_id]]
        for p in posts
        if p.post_id in keyed and p.conversation_id and (not p.is_public or p.kind == "dm")
    }
    own = [p for p in posts if p.kind in OWN_KINDS]
    links += _own_links(session, own, batch_parents=batch_parents, batch_threads=batch_threads)
    if links:
        session.execute(
            update(POSTS).where(POSTS.c.id == bindparam("pid")).values(conversation_ref=bindparam("cid")),
            links,
            execution_options={"synchronize_session": False},
        )
    return len(links)


def _own_links(
    session: Session,
    own: list[Threadable],
    *,
    batch_parents: dict[tuple[str, str], int],
    batch_threads: dict[tuple[str, str], int],
) -> list[dict[str, int]]:
    """The brand's posts: each joins the conversation of its parent, or of a customer's DM in the same thread."""
    if not own:
        return []
    parents = {p.in_reply_to for p in own if p.in_reply_to}
    threads = {p.conversation_id for p in own if p.conversation_id and (not p.is_public or p.kind == "dm")}
    by_parent: dict[tuple[str, str], int] = {}
    if parents:
        stmt = select(POSTS.c.network, POSTS.c.external_id, POSTS.c.conversation_ref).where(
            POSTS.c.external_id.in_(parents), POSTS.c.conversation_ref.is_not(None)
        )
        by_parent = {(n, e): c for n, e, c in session.execute(stmt).all()}
    by_thread: dict[tuple[str, str], int] = {}
    if threads:
        stmt = select(POSTS.c.network, POSTS.c.conversation_id, POSTS.c.conversation_ref).where(
            POSTS.c.conversation_id.in_(threads),
            POSTS.c.is_public.is_(False),
            POSTS.c.conversation_ref.is_not(None),
        )
        by_thread = {(n, t): c for n, t, c in session.execute(stmt).all()}
    by_parent.update(batch_parents)
    by_thread.update(batch_threads)
    links = []
    for post in own:
        cid = by_parent.get((post.network, post.in_reply_to or ""))
        if cid is None and not post.is_public:
            cid = by_thread.get((post.network, post.conversation_id or ""))
        if cid is not None:
            links.append({"pid": post.post_id, "cid": cid})
    return links


def refresh_conversation(session: Session, conversation_id: int) -> None:
    """Recompute a conversation's status and SLA clock from its messages still waiting for us (caller commits)."""
    session.flush()
    oldest = session.execute(
        select(POSTS.c.created_at)
        .where(
            POSTS.c.conversation_ref == conversation_id,
            POSTS.c.status.in_([s.value for s in OPEN_STATUSES]),
            POSTS.c.kind.not_in(list(OWN_KINDS)),
            # A message the classifier found needs no answer does not keep the conversation open.
            POSTS.c.needs_response.is_not(False),
        )
        .order_by(POSTS.c.created_at.asc())
        .limit(1)
    ).scalar_one_or_none()
    session.execute(
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.id == conversation_id)
        .values(
            first_unanswered_at=oldest,
            status=ConversationStatus.OPEN.value if oldest is not None else ConversationStatus.CLOSED.value,
        )
        .execution_options(synchronize_session=False)
    )
