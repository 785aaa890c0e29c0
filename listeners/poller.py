"""The one generic poll loop: fetch a source from its cursor, store posts and cursor together, track health."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.store import get_cursor, record_fetch
from models.tables import utcnow
from models.watch import load_watched
from networks.base import (
    AuthFailed,
    FetchResult,
    Listener,
    ListenerError,
    PagedListener,
    QuotaReporter,
    RateLimited,
    WatchingListener,
)

log = logging.getLogger(__name__)


class PollStatus(enum.StrEnum):
    """How one poll ended."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    TEMPORARY_FAILURE = "temporary_failure"


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll did, and how it ended."""

    status: PollStatus
    inserted: int = 0
    duplicates: int = 0
    retry_after: float | None = None
    error: str | None = None
    pages: int = 0
    # True when a paged run stopped at its page bound and resumes on the next poll.
    unfinished: bool = False


def quota_of(listener: Listener) -> dict[str, Any]:
    """The listener's last rate-limit headers per endpoint, JSON-ready (empty when it has none)."""
    if not isinstance(listener, QuotaReporter):
        return {}
    return {path: limit.as_json() for path, limit in listener.quota().items()}


def _mark_unhealthy(engine: Engine, listener: Listener, error: str, retry_after: float | None) -> None:
    with Session(engine) as session:
        cursor = get_cursor(session, network=listener.network, source=listener.source)
        was_healthy = cursor.healthy
        now = utcnow()
        cursor.healthy = False
        cursor.last_error = error[:1024]
        cursor.last_error_at = now
        cursor.next_run_at = now + timedelta(seconds=retry_after) if retry_after else None
        limits = quota_of(listener)
        if limits:
            cursor.rate_limits = {**cursor.rate_limits, **limits}
        session.add(cursor)
        session.commit()
    # Health is logged on change only, so a long outage is one line, not one per tick.
    if was_healthy:
        log.warning("%s/%s unhealthy: %s", listener.network, listener.source, error)


def _pages(listener: Listener, cursor: str | None, seen: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
    if isinstance(listener, PagedListener):
        yield from listener.fetch_pages(cursor, seen, paging)
    else:
        yield listener.fetch(cursor, seen)


def poll_source(engine: Engine, listener: Listener) -> PollOutcome:
    """Poll one source once, committing page by page; errors become an outcome, never an exception."""
    with Session(engine) as session:
        cursor = get_cursor(session, network=listener.network, source=listener.source)
        position, seen, paging = cursor.cursor, list(cursor.seen_ids), dict(cursor.paging)
        was_healthy = cursor.healthy
        if isinstance(listener, WatchingListener):
            # What the last committed page left: a crash mid-poll resumes from the set saved with its posts.
            listener.set_watched(load_watched(session, network=listener.network))
        session.commit()
    inserted = duplicates = pages = 0
    unfinished = False
    try:
        for result in _pages(listener, position, seen, paging):
            notes = list(result.skipped)
            # Posts and cursor (and the page state) commit together: a crash before this re-fetches the
            # page, after it resumes from the next one; nothing is lost, duplicates are ignored.
            with Session(engine) as session:
                stored = record_fetch(
                    session,
                    network=listener.network,
                    source=listener.source,
                    posts=result.posts,
                    next_cursor=result.next_cursor,
                    seen_ids=result.seen_ids,
                    requests_made=result.requests_made,
                    paging=result.paging,
                    items_read=result.items_read,
                    rate_limits=quota_of(listener),
                    notes=notes,
                    watch=result.watch,
                    unwatch=result.unwatch,
                )
                session.commit()
            for reason in notes:
                log.warning("%s/%s: %s", listener.network, listener.source, reason)
            inserted, duplicates, pages = inserted + stored.inserted, duplicates + stored.duplicates, pages + 1
            unfinished = bool(result.paging)
    except RateLimited as exc:
        _mark_unhealthy(engine, listener, f"rate limited: {exc}", exc.retry_after)
        return PollOutcome(PollStatus.RATE_LIMITED, inserted, duplicates, retry_after=exc.retry_after, error=str(exc))
    except AuthFailed as exc:
        _mark_unhealthy(engine, listener, f"credentials refused: {exc}", None)
        return PollOutcome(PollStatus.AUTH_FAILED, inserted, duplicates, error=str(exc))
    except ListenerError as exc:
        _mark_unhealthy(engine, listener, f"temporary failure: {exc}", None)
        return PollOutcome(PollStatus.TEMPORARY_FAILURE, inserted, duplicates, error=str(exc))
    if unfinished:
        log.info(
            "%s/%s: %d pages stored; the run resumes from the saved page", listener.network, listener.source, pages
        )
    if not was_healthy:
        log.info("%s/%s recovered", listener.network, listener.source)
    return PollOutcome(PollStatus.OK, inserted, duplicates, pages=pages, unfinished=unfinished)
