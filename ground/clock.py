"""Time helpers: the database may hand back naive UTC datetimes (SQLite), the code works in aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are UTC as stored."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def aware_or_none(value: datetime | None) -> datetime | None:
    """Like ``aware`` but lets None through."""
    return None if value is None else aware(value)
