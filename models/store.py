"""Storing what listeners fetched: posts, authors and the cursor, in one transaction."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from ground.db import IN_CHUNK
from ground.wake import wake
from models.conversations import thread_posts
from models.customers import ensure_customers
from models.tables import EXTERNAL_ID_MAX, Author, Post, SourceCursor, WebhookDelivery, utcnow
from models.watch import Watch, save_watches

# SQLModel does not declare ``__table__`` for type checkers; these are the Core tables behind the models.
POSTS: Table = Post.__table__  # type: ignore[attr-defined]
AUTHORS: Table = Author.__table__  # type: ignore[attr-defined]
CURSORS: Table = SourceCursor.__table__  # type: ignore[attr-defined]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]

# Bound on remembered ids for sources without since_id; a week of DMs for a busy brand fits well.
MAX_SEEN_IDS = 5000
# Longest text kept; X allows 25k characters to paying accounts, a Facebook post 63k.
MAX_TEXT = 30_000
# C0 controls (but tab, newline, carriage return) and DEL are dropped; NUL is what PostgreSQL refuses.
_CONTROLS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """How many of a fetched batch were new and how many were already stored."""

    inserted: int
    duplicates: int
    # (network, external id) of the posts this batch inserted: a shared transaction tells its deliveries apart by them.
    new_keys: frozenset[tuple[str, str]] = frozenset()


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
            network=network,
            source=source,
            seen_ids=[],
            healthy=True,
            posts_ingested=0,
            requests_made=0,
            paging={},
            rate_limits={},
            budget_month="",
            month_posts_read=0,
            month_requests=0,
        )
        session.execute(stmt.on_conflict_do_nothing())
        row = session.execute(query).scalar_one()
    return row


def _author_row(a: Any, now: datetime) -> dict[str, Any]:
    return {
        "network": a.network,
        "external_id": a.external_id,
        "username": clean_text(a.username)[:255],
        "display_name": clean_text(a.display_name)[:255],
        "followers_count": int(a.followers_count),
        "verified": bool(a.verified),
        "updated_at": now,
    }


_PROFILE = ("username", "display_name", "followers_count", "verified")


def _by_key(session: Session, table: Table, keys: Sequence[tuple[str, str]], *columns: str) -> list[Any]:
    """The rows of ``table`` whose (network, external_id) is one of ``keys``, with those two and ``columns``."""
    rows: list[Any] = []
    keys = sorted(keys)
    # One statement for every network: each round trip counts in the webhook writer's shared transaction.
    key = tuple_(table.c.network, table.c.external_id)
    query = select(table.c.network, table.c.external_id, *(table.c[c] for c in columns))
    for start in range(0, len(keys), IN_CHUNK):
        rows += session.execute(query.where(key.in_(keys[start : start + IN_CHUNK]))).all()
    return rows


def _upsert_authors(session: Session, posts: Sequence[Any]) -> dict[tuple[str, str], int]:
    # An author id that does not fit its column is dropped (the post is kept, without an author).
    authors = {
        (p.author.network, p.author.external_id): p.author
        for p in posts
        if p.author is not None and _storable_id(p.author.external_id, 64)
    }
    if not authors:
        return {}
    now = utcnow()
    # In key order, as every writer does: a poll's page and a group of webhook deliveries that share authors
    # take their row locks in the same order and cannot deadlock.
    rows = [_author_row(a, now) for _, a in sorted(authors.items())]
    # A plain read first: most authors are already stored as they are, and an upsert of an unchanged row would
    # still lock it until commit, so the webhook writer and a poll sharing one author queued behind each other.
    # Only new authors, changed profiles and identities still without a customer are written (and locked).
    known = {
        (r.network, r.external_id): r for r in _by_key(session, AUTHORS, list(authors), "id", "customer_id", *_PROFILE)
    }
    ids = {k: int(r.id) for k, r in known.items() if r.customer_id is not None}
    changed = [
        row
        for row in rows
        if (key := (row["network"], row["external_id"])) not in ids
        or any(getattr(known[key], field) != row[field] for field in _PROFILE)
    ]
    if not changed:
        return ids
    # executemany with one cached statement (SQLAlchemy sends its rows as INSERT … RETURNING, up to 1,000 a time).
    stmt = _insert(session, AUTHORS)
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
    written = session.execute(stmt.returning(AUTHORS.c.id, AUTHORS.c.network, AUTHORS.c.external_id), changed).all()
    if len(written) != len(changed):
        # Never expected (an upsert returns its row on either path), but a missing id would store posts without
        # their author: the batch fails loudly instead and is fetched or delivered again.
        raise RuntimeError(f"the author upsert returned {len(written)} ids for {len(changed)} authors")
    ids.update({(str(network), str(external_id)): int(row_id) for row_id, network, external_id in written})
    # Every identity belongs to a person from the moment it is stored (a new author is a customer of their own).
    ensure_customers(session, [int(r[0]) for r in written])
    return ids


def clean_text(value: str) -> str:
    """Make a network's text storable everywhere: no NUL/control characters, no lone surrogates.

    PostgreSQL refuses NUL in text and invalid UTF-8 (lone surrogates from JSON escapes) anywhere; tabs
    and newlines are kept, other C0 controls and DEL become nothing, surrogates become U+FFFD.
    """
    if value.isprintable() and value.isascii():
        return value  # the common case, checked in C
    value = value.translate(_CONTROLS)
    return _SURROGATE.sub("\ufffd", value)


def clean_json(value: Any) -> Any:
    """``clean_text`` applied to every string (keys included) of a JSON-like value; NaN and ±Infinity,
    which Python's JSON parser accepts but PostgreSQL's json type refuses, become null."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def _clip(value: str | None, limit: int) -> str | None:
    return clean_text(value)[:limit] if value is not None else None


def _storable_id(value: str | None, limit: int) -> bool:
    """Whether an id can be stored as it is: not empty, fits its column, nothing a database refuses (NUL)."""
    return value is not None and 0 < len(value) <= limit and clean_text(value) == value


def post_row(post: Any, *, author_id: int | None, now: datetime) -> tuple[dict[str, Any] | None, str | None]:
    """The ``post`` row for an incoming post, made to fit the columns; (None, reason) when it cannot."""
    if not _storable_id(post.external_id, EXTERNAL_ID_MAX):
        why = f"does not fit (max {EXTERNAL_ID_MAX}, no controls)"
        return None, f"{post.network}/{post.source}: id {post.external_id[:40]!r}… {why}"
    text = clean_text(post.text)
    raw = clean_json(post.raw)
    note = None
    if len(text) > MAX_TEXT:
        note = f"{post.network} {post.external_id}: text of {len(text)} characters cut to {MAX_TEXT}"
        text = text[:MAX_TEXT] + "…"
        # The raw copy would hold the whole text a second time; keep its other fields.
        raw = {**raw, "text": text} if isinstance(raw, dict) and "text" in raw else raw
        if isinstance(raw, dict) and "message" in raw:
            raw = {**raw, "message": text}
    reply_to = post.in_reply_to_external_id
    row = {
        "network": post.network,
        "external_id": post.external_id,
        "kind": post.kind,
        "source": post.source,
        "author_id": author_id,
        "text": text,
        "lang": post.lang if _storable_id(post.lang, 16) else None,
        "is_public": post.is_public,
        "manual_only": post.manual_only,
        "conversation_id": _clip(post.conversation_id, 128),
        "in_reply_to_external_id": reply_to if _storable_id(reply_to, 128) else None,
        "url": post.url if _storable_id(post.url, 1024) else None,
        "created_at": post.created_at,
        "ingested_at": now,
        "status": "new",
        "raw": raw,
    }
    return row, note


def save_posts(session: Session, posts: Sequence[Any], *, notes: list[str] | None = None) -> StoredBatch:
    """Insert posts not stored yet (unique by network and external id); link replies to parents; thread them.

    Posts that cannot be stored (an id too long for the column) are left out and, like texts that had
    to be cut, explained in ``notes`` for the caller to log.
    """
    if not posts:
        return StoredBatch(0, 0)
    author_ids = _upsert_authors(session, posts)
    now = utcnow()
    unique: dict[tuple[str, str], Any] = {}
    for p in posts:
        # The first copy is kept, as storing them one after another would (a later one finds it stored).
        unique.setdefault((p.network, p.external_id), p)
    # A plain read first, as for the authors: the INSERT below would wait on a stored post that another
    # transaction is changing (a worker scoring it, say) only to find it a duplicate; the read never waits.
    # Ids too long for the column cannot be stored (post_row explains them below), so they are not looked up.
    storable = [k for k in unique if _storable_id(k[1], EXTERNAL_ID_MAX)]
    for row in _by_key(session, POSTS, storable):
        del unique[(row.network, row.external_id)]
    rows = []
    for _, p in sorted(unique.items()):  # key order, for the same reason as the authors'
        author_id = author_ids.get((p.author.network, p.author.external_id)) if p.author else None
        row, note = post_row(p, author_id=author_id, now=now)
        if note is not None and notes is not None:
            notes.append(note)
        if row is not None:
            rows.append(row)
    if not rows:
        return StoredBatch(0, len(posts))
    stmt = _insert(session, POSTS).on_conflict_do_nothing(index_elements=["network", "external_id"])
    result = session.execute(stmt.returning(POSTS.c.id, POSTS.c.network, POSTS.c.external_id), rows)
    inserted = result.all()
    new_ids = [r[0] for r in inserted]
    _link_parents(session, new_ids, [str(r[2]) for r in inserted])
    # After the parents: a reply's row lock is taken before its conversation's, as every other writer does.
    thread_posts(session, new_ids)
    if new_ids:
        wake(session, "score")  # the classifier runs as soon as these posts are committed
    return StoredBatch(
        inserted=len(new_ids),
        duplicates=len(posts) - len(new_ids),
        new_keys=frozenset((str(r[1]), str(r[2])) for r in inserted),
    )


def _link_parents(session: Session, post_ids: list[int], new_external: list[str]) -> None:
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
    # Two statements, each proportional to the page: the new posts themselves, then the unlinked replies that
    # point at one of them, probed by value in ``ix_post_unlinked_reply``. (One statement with the two joined
    # by OR read the whole post table, or the whole index, on every page.)
    session.execute(
        update(child)
        .where(child.c.id.in_(post_ids), child.c.parent_id.is_(None), child.c.in_reply_to_external_id.is_not(None))
        .values(parent_id=parent_id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(child)
        .where(child.c.parent_id.is_(None), child.c.in_reply_to_external_id.in_(new_external))
        .values(parent_id=parent_id)
        .execution_options(synchronize_session=False)
    )


def count_reads(cursor: SourceCursor, *, items_read: int, requests_made: int) -> None:
    """Add a fetch's reads to the cursor's month counters (reset when a new UTC month begins)."""
    month = utcnow().strftime("%Y-%m")
    if cursor.budget_month != month:
        cursor.budget_month, cursor.month_posts_read, cursor.month_requests = month, 0, 0
    cursor.month_posts_read += items_read
    cursor.month_requests += requests_made
    cursor.requests_made += requests_made


def record_fetch(
    session: Session,
    *,
    network: str,
    source: str,
    posts: Sequence[Any],
    next_cursor: str | None,
    seen_ids: list[str] | None = None,
    requests_made: int = 1,
    paging: dict[str, Any] | None = None,
    items_read: int | None = None,
    rate_limits: dict[str, Any] | None = None,
    notes: list[str] | None = None,
    watch: Sequence[Watch] = (),
    unwatch: Sequence[str] = (),
) -> StoredBatch:
    """Save a fetch's (or one page's) posts and advance the source's cursor in the caller's transaction.

    ``paging`` is the resume point of an unfinished paged run ({} once it finished, None: unchanged);
    ``watch`` and ``unwatch`` change the network's watched posts in the same transaction.
    """
    cursor = get_cursor(session, network=network, source=source)
    stored = save_posts(session, posts, notes=notes)
    if watch or unwatch:
        save_watches(session, network=network, watch=watch, unwatch=unwatch)
    if next_cursor is not None:
        cursor.cursor = next_cursor
    if seen_ids is not None:
        cursor.seen_ids = list(seen_ids)[-MAX_SEEN_IDS:]
    if paging is not None:
        cursor.paging = dict(paging)
    if rate_limits:
        cursor.rate_limits = {**cursor.rate_limits, **rate_limits}
    count_reads(cursor, items_read=len(posts) if items_read is None else items_read, requests_made=requests_made)
    cursor.posts_ingested += stored.inserted
    cursor.last_success_at = utcnow()
    cursor.healthy = True
    cursor.last_error = None
    session.add(cursor)
    return stored


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified webhook delivery to log: network, id (the digest of its body), when it was sent, its posts."""

    network: str
    delivery_id: str
    sent_at: datetime | None
    posts: Sequence[Any]


def record_delivery(
    session: Session,
    *,
    network: str,
    delivery_id: str,
    sent_at: datetime | None,
    posts: Sequence[Any],
    notes: list[str] | None = None,
) -> StoredBatch | None:
    """Log a webhook delivery and save its posts in the caller's transaction; None when it was logged before.

    Posts go through ``save_posts`` like polled ones, so a post that came by poll, by webhook or both is one row.
    """
    return record_deliveries(session, [Delivery(network, delivery_id, sent_at, posts)], notes=notes)[0]


def record_deliveries(
    session: Session, deliveries: Sequence[Delivery], *, notes: list[str] | None = None
) -> list[StoredBatch | None]:
    """Log deliveries and save all their posts in one ``save_posts``, in the caller's transaction, in order.

    Each result says what its delivery added, as if the deliveries had been stored one after another: None for one
    logged before (or earlier in the list), and a post two of them carry counts as new for the first only.
    """
    now = utcnow()
    first: dict[tuple[str, str], int] = {}
    for i, d in enumerate(deliveries):
        first.setdefault((d.network, d.delivery_id), i)
    # One INSERT for the group; the unique (network, delivery_id) decides between two receivers racing on one
    # redelivery, and a delivery logged before returns no id.
    logged: dict[tuple[str, str], int] = {}
    if first:
        stmt = _insert(session, DELIVERIES).values(
            [
                {
                    "network": deliveries[i].network,
                    "delivery_id": deliveries[i].delivery_id,
                    "received_at": now,
                    "sent_at": deliveries[i].sent_at,
                    "posts": len(deliveries[i].posts),
                    "inserted": 0,
                }
                for _, i in sorted(first.items())  # key order, as save_posts writes its rows
            ]
        )
        returned = session.execute(
            stmt.on_conflict_do_nothing(index_elements=["network", "delivery_id"]).returning(
                DELIVERIES.c.id, DELIVERIES.c.network, DELIVERIES.c.delivery_id
            )
        ).all()
        logged = {(str(network), str(delivery_id)): int(row_id) for row_id, network, delivery_id in returned}
    fresh = [i for key, i in first.items() if key in logged]
    stored = save_posts(session, [p for i in fresh for p in deliveries[i].posts], notes=notes)
    unclaimed = set(stored.new_keys)
    results: list[StoredBatch | None] = [None] * len(deliveries)
    counts: list[dict[str, int]] = []
    for i in fresh:
        d = deliveries[i]
        mine = {(p.network, p.external_id) for p in d.posts} & unclaimed
        unclaimed -= mine
        results[i] = StoredBatch(inserted=len(mine), duplicates=len(d.posts) - len(mine), new_keys=frozenset(mine))
        counts.append({"row_id": logged[(d.network, d.delivery_id)], "n": len(mine)})
    if counts:
        session.execute(
            update(DELIVERIES).where(DELIVERIES.c.id == bindparam("row_id")).values(inserted=bindparam("n")),
            counts,
        )
    return results
