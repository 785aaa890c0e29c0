"""Storing what listeners fetched: posts, authors and the cursor, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from models.tables import Author, Post, SourceCursor, utcnow

# SQLModel does not declare ``__table__`` for type checkers; these are the Core tables behind the models.
POSTS: Table = Post.__table__  # type: ignore[attr-defined]
AUTHORS: Table = Author.__table__  # type: ignore[attr-defined]
CURSORS: Table = SourceCursor.__table__  # type: ignore[attr-defined]

# Bound on remembered ids for sources without since_id; a week of DMs for a busy brand fits well.
MAX_SEEN_IDS = 5000


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """How many of a fetched batch were new and how many were already stored."""

    inserted: int
    duplicates: int


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def get_cursor(session: Session, *, network: str, source: str) -> SourceCursor:
    """Return the cursor row of a source, creating it on first use."""
    query = select(SourceCursor).where(col(SourceCursor.network) == network, col(SourceCursor.source) == source)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        stmt = _insert(session, CURSORS).values(
            network=network, source=source, seen_ids=[], healthy=True, posts_ingested=0, requests_made=0
        )
        session.execute(stmt.on_conflict_do_nothing())
        row = session.execute(query).scalar_one()
    return row


def _upsert_authors(session: Session, posts: Sequence[Any]) -> dict[tuple[str, str], int]:
    authors = {(p.author.network, p.author.external_id): p.author for p in posts if p.author is not None}
    if not authors:
        return {}
    now = utcnow()
    rows = [
        {
            "network": a.network,
            "external_id": a.external_id,
            "username": a.username[:255],
            "display_name": a.display_name[:255],
            "followers_count": int(a.followers_count),
            "verified": bool(a.verified),
            "updated_at": now,
        }
        for a in authors.values()
    ]
    stmt = _insert(session, AUTHORS).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["network", "external_id"],
        set_={
            "username": stmt.excluded.username,
            "display_name": stmt.excluded.display_name,
            "followers_count": stmt.excluded.followers_count,
            "verified": stmt.excluded.verified,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    session.execute(stmt)
    ids: dict[tuple[str, str], int] = {}
    for network in {k[0] for k in authors}:
        external = [k[1] for k in authors if k[0] == network]
        for row in session.execute(
            select(Author.id, Author.external_id).where(  # type: ignore[call-overload]
                col(Author.network) == network,
                col(Author.external_id).in_(external),
            )
        ):
            ids[(network, row.external_id)] = row.id
    return ids


def save_posts(session: Session, posts: Sequence[Any]) -> StoredBatch:
    """Insert posts not stored yet (unique by network and external id); link replies to parents."""
    if not posts:
        return StoredBatch(0, 0)
    author_ids = _upsert_authors(session, posts)
    now = utcnow()
    unique = {(p.network, p.external_id): p for p in posts}
    rows = [
        {
            "network": p.network,
            "external_id": p.external_id,
            "kind": p.kind,
            "source": p.source,
            "author_id": author_ids.get((p.author.network, p.author.external_id)) if p.author else None,
            "text": p.text,
            "lang": p.lang,
            "is_public": p.is_public,
            "manual_only": p.manual_only,
            "conversation_id": p.conversation_id,
            "in_reply_to_external_id": p.in_reply_to_external_id,
            "url": p.url,
            "created_at": p.created_at,
            "ingested_at": now,
            "status": "new",
            "raw": p.raw,
        }
        for p in unique.values()
    ]
    stmt = _insert(session, POSTS).values(rows).on_conflict_do_nothing(index_elements=["network", "external_id"])
    result = session.execute(stmt.returning(POSTS.c.id))
    new_ids = [r[0] for r in result]
    _link_parents(session, new_ids)
    return StoredBatch(inserted=len(new_ids), duplicates=len(posts) - len(new_ids))


def _link_parents(session: Session, post_ids: list[int]) -> None:
    # Threads: a reply points at its parent once both are stored; the parent may come in a later batch,
    # so children that arrived first are linked when their parent arrives too.
    if not post_ids:
        return
    parent = POSTS.alias("parent")
    child = POSTS
    parent_id = (
        select(parent.c.id)
        .where(parent.c.network == child.c.network, parent.c.external_id == child.c.in_reply_to_external_id)
        .scalar_subquery()
    )
    new_external = select(child.c.external_id).where(child.c.id.in_(post_ids)).scalar_subquery()
    session.execute(
        update(child)
        .where(
            child.c.parent_id.is_(None),
            child.c.in_reply_to_external_id.is_not(None),
            (child.c.id.in_(post_ids)) | (child.c.in_reply_to_external_id.in_(new_external)),
        )
        .values(parent_id=parent_id)
        .execution_options(synchronize_session=False)
    )


def record_fetch(
    session: Session,
    *,
    network: str,
    source: str,
    posts: Sequence[Any],
    next_cursor: str | None,
    seen_ids: list[str] | None = None,
    requests_made: int = 1,
) -> StoredBatch:
    """Save a fetch's posts and advance the source's cursor in the caller's transaction."""
    cursor = get_cursor(session, network=network, source=source)
    stored = save_posts(session, posts)
    if next_cursor is not None:
        cursor.cursor = next_cursor
    if seen_ids is not None:
        cursor.seen_ids = list(seen_ids)[-MAX_SEEN_IDS:]
    cursor.posts_ingested += stored.inserted
    cursor.requests_made += requests_made
    cursor.last_success_at = utcnow()
    cursor.healthy = True
    cursor.last_error = None
    session.add(cursor)
    return stored
