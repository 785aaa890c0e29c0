"""Short, language-neutral renderings of durations and counts for the desk."""

from __future__ import annotations

from datetime import UTC, datetime

from networks.registry import NETWORKS, spec_of


def duration(seconds: float) -> str:
    """Return a compact duration such as ``45s``, ``12m``, ``1h 05m`` or ``3d 4h`` (sign dropped)."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    minutes, _ = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def count(n: int) -> str:
    """Return a follower-style count: ``950``, ``12.3k``, ``4.1M``."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def network(code: str) -> str:
    """Return the display name of a network code."""
    return spec_of(code).label if code in NETWORKS else code


def kind(code: str) -> str:
    """Return a post kind as words (``page_post`` → ``page post``, ``dm`` → ``DM``)."""
    return "DM" if code == "dm" else code.replace("_", " ")


def clock(when: datetime) -> str:
    """Return a time of day in UTC such as ``14:05 UTC``."""
    return when.astimezone(UTC).strftime("%H:%M UTC")
