"""Time helpers: the database may hand back naive UTC datetimes (SQLite), the code works in aware UTC; one clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


def aware(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are UTC as stored."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def aware_or_none(value: datetime | None) -> datetime | None:
    """Like ``aware`` but lets None through."""
    return None if value is None else aware(value)


# The whole product reads the time through ``now()`` (``models.tables.utcnow``): a simulation (a day on the sandbox
# in a test) moves it forward with ``advance``; in production the offset stays zero.
_offset = timedelta(0)
_lock = threading.Lock()


def now() -> datetime:
    """The current time, aware UTC: real time plus whatever a simulation advanced."""
    return datetime.now(UTC) + _offset


def advance(seconds: float) -> None:
    """Move the clock forward (a simulation only)."""
    global _offset
    with _lock:
        _offset += timedelta(seconds=seconds)


@contextmanager
def simulated(start: datetime) -> Iterator[None]:
    """Run a block with the clock set to ``start`` (and moved by ``advance``), then back to real time."""
    global _offset
    with _lock:
        saved = _offset
        _offset = aware(start) - datetime.now(UTC)
    try:
        yield
    finally:
        with _lock:
            _offset = saved
