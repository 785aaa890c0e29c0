"""SLA targets: how long a customer may wait for our first answer, per channel and lane.

Policies live in the ``slapolicy`` table (editable); without rows the defaults below apply. A policy may
count business hours only; the answer is never due more than ``MAX_S`` after the post, whatever the policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from ground.clock import aware
from models.tables import BusinessHours, SlaPolicy

# Defaults follow the product promise: crisis in minutes, complaints within the hour, never past 24 h.
CRISIS_S = 15 * 60
PUBLIC_COMPLAINT_S = 60 * 60
PUBLIC_OTHER_S = 4 * 60 * 60
DM_S = 4 * 60 * 60
MAX_S = 24 * 60 * 60
COMPLAINT_THRESHOLD = 0.5

CHANNELS = ("public", "dm")
LANES = ("crisis", "complaint", "other")
DEFAULT_POLICIES: dict[tuple[str, str], int] = {
    ("public", "crisis"): CRISIS_S,
    ("dm", "crisis"): CRISIS_S,
    ("public", "complaint"): PUBLIC_COMPLAINT_S,
    ("public", "other"): PUBLIC_OTHER_S,
    ("dm", "complaint"): DM_S,
    ("dm", "other"): DM_S,
}


def lane(*, crisis: bool, complaint: float) -> str:
    """Name the SLA lane of a post: crisis, complaint or other."""
    if crisis:
        return "crisis"
    return "complaint" if complaint >= COMPLAINT_THRESHOLD else "other"


def sla_seconds(*, crisis: bool, is_dm: bool, complaint: float) -> int:
    """Return the default first-response target in seconds for a post (no policy table needed)."""
    seconds = DEFAULT_POLICIES[("dm" if is_dm else "public", lane(crisis=crisis, complaint=complaint))]
    return min(seconds, MAX_S)


def due_at(created_at: datetime, seconds: int) -> datetime:
    """Return when the answer is due; the clock starts at the post's own time, not at ingestion."""
    return aware(created_at) + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Window:
    """One weekly opening window in a timezone (minutes from midnight; an end ≤ start runs overnight)."""

    weekday: int
    start_minute: int
    end_minute: int
    timezone: str = "UTC"


def _open_intervals(windows: Iterable[Window], start: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """The opening intervals (aware UTC) that overlap ``days`` days from the day before ``start``."""
    out: list[tuple[datetime, datetime]] = []
    for w in windows:
        tz = ZoneInfo(w.timezone)
        local_start = start.astimezone(tz).date() - timedelta(days=1)
        for offset in range(days + 2):
            day = local_start + timedelta(days=offset)
            if day.weekday() != w.weekday:
                continue
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            begin = midnight + timedelta(minutes=w.start_minute)
            end_minutes = w.end_minute if w.end_minute > w.start_minute else w.end_minute + 1440
            out.append((aware(begin), aware(midnight + timedelta(minutes=end_minutes))))
    return sorted(out)


def add_business_seconds(start: datetime, seconds: int, windows: Iterable[Window]) -> datetime:
    """Return the moment ``seconds`` of opening time have passed since ``start``."""
    windows = list(windows)
    start = aware(start)
    if not windows:
        return start + timedelta(seconds=seconds)
    left = float(seconds)
    cursor = start
    for begin, end in _open_intervals(windows, start, days=15):
        if end <= cursor:
            continue
        begin = max(begin, cursor)
        span = (end - begin).total_seconds()
        if span >= left:
            return begin + timedelta(seconds=left)
        left -= span
        cursor = end
    return start + timedelta(seconds=MAX_S)  # no opening time in sight: fall back to the hard cap


def is_open(at: datetime, windows: Iterable[Window]) -> bool:
    """Tell whether ``at`` falls inside one of the windows (no windows: always open)."""
    windows = list(windows)
    if not windows:
        return True
    at = aware(at)
    return any(begin <= at < end for begin, end in _open_intervals(windows, at, days=1))


@dataclass(slots=True)
class SlaBook:
    """The SLA policies and business hours in force, loaded once per sweep."""

    seconds_by: dict[tuple[str, str], int] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    business_by: dict[tuple[str, str], bool] = field(default_factory=dict)
    hours: list[Window] = field(default_factory=list)

    @classmethod
    def load(cls, session: Session) -> SlaBook:
        """Read the policy and business-hours tables; missing policies keep their defaults."""
        book = cls()
        for p in session.execute(select(SlaPolicy)).scalars():
            book.seconds_by[(p.channel, p.lane)] = min(p.seconds, MAX_S)
            book.business_by[(p.channel, p.lane)] = p.business_hours
        book.hours = [
            Window(h.weekday, h.start_minute, h.end_minute, h.timezone)
            for h in session.execute(select(BusinessHours)).scalars()
        ]
        return book

    def seconds(self, channel: str, lane_name: str) -> int:
        """Return the target in seconds for a channel and lane."""
        return self.seconds_by.get((channel, lane_name), MAX_S)

    def due(self, created_at: datetime, channel: str, lane_name: str) -> datetime:
        """Return when a post is due: business time where the policy says so, never past ``MAX_S``."""
        seconds = self.seconds(channel, lane_name)
        created = aware(created_at)
        if self.business_by.get((channel, lane_name)) and self.hours:
            return min(add_business_seconds(created, seconds, self.hours), created + timedelta(seconds=MAX_S))
        return created + timedelta(seconds=seconds)
