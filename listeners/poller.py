"""The one generic poll loop: fetch a source from its cursor, store posts and cursor together, track health."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from listeners.base import AuthFailed, Listener, ListenerError, RateLimited, TemporaryFailure
from models.store import get_cursor, record_fetch
from models.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll did: ok, rate_limited, auth_failed or temporary_failure."""

    status: str
    inserted: int = 0
    duplicates: int = 0
    retry_after: float | None = None
    error: str | None = None


def _mark_unhealthy(engine: Engine, listener: Listener, error: str, retry_after: float | None) -> None:
    with Session(engine) as session:
        cursor = get_cursor(session, network=listener.network, source=listener.source)
        was_healthy = cursor.healthy
        now = utcnow()
        cursor.healthy = False
        cursor.last_error = error[:1024]
        cursor.last_error_at = now
        cursor.next_run_at = now + timedelta(seconds=retry_after) if retry_after else None
        session.add(cursor)
        session.commit()
    # Health is logged on change only, so a long outage is one line, not one per tick.
    if was_healthy:
        log.warning("%s/%s unhealthy: %s", listener.network, listener.source, error)


def poll_source(engine: Engine, listener: Listener) -> PollOutcome:
    """Poll one source once; errors become an outcome, never an exception."""
    with Session(engine) as session:
        cursor = get_cursor(session, network=listener.network, source=listener.source)
        position, seen, was_healthy = cursor.cursor, list(cursor.seen_ids), cursor.healthy
        session.commit()
    try:
        result = listener.fetch(position, seen)
    except RateLimited as exc:
        _mark_unhealthy(engine, listener, f"rate limited: {exc}", exc.retry_after)
        return PollOutcome("rate_limited", retry_after=exc.retry_after, error=str(exc))
    except AuthFailed as exc:
        _mark_unhealthy(engine, listener, f"credentials refused: {exc}", None)
        return PollOutcome("auth_failed", error=str(exc))
    except (TemporaryFailure, ListenerError) as exc:
        _mark_unhealthy(engine, listener, f"temporary failure: {exc}", None)
        return PollOutcome("temporary_failure", error=str(exc))
    for reason in result.skipped:
        log.warning("%s/%s skipped an item: %s", listener.network, listener.source, reason)
    # Posts and cursor commit together: a crash before this line re-fetches, after it nothing is lost.
    with Session(engine) as session:
        stored = record_fetch(
            session,
            network=listener.network,
            source=listener.source,
            posts=result.posts,
            next_cursor=result.next_cursor,
            seen_ids=result.seen_ids,
            requests_made=result.requests_made,
        )
        session.commit()
    if not was_healthy:
        log.info("%s/%s recovered", listener.network, listener.source)
    return PollOutcome("ok", inserted=stored.inserted, duplicates=stored.duplicates)
