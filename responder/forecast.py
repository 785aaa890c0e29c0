"""When can we really answer? A promise from a forecast, not from the SLA target.

The forecast is the owner's queue ahead of the post, times the team's measured time per answer in the post's
lane (a smoothed average over the last day's sent answers), plus a safety margin, laid on the owner's working hours
(``Shift``); never under the lane's floor. It is then rounded *up* to words a customer reads ("within 2 hours",
"tomorrow morning"), and the promised time is what those words mean, so the words are never shorter than the
forecast.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from ground.clock import aware
from models.tables import Post, PostStatus, Reply, ReplyKind, ReplyState, Score
from responder.sla_targets import Window, add_business_seconds, lane

# What one answer takes when the desk has measured little or nothing yet (the SLA sweep's own guess).
DEFAULT_HANDLE_S = 5 * 60.0
# How many answers the default weighs, so two quick answers do not make a promise of minutes.
PRIOR_ANSWERS = 5
RATE_WINDOW = timedelta(hours=24)
RATE_SAMPLE = 5000  # newest answers read to measure the rate: enough for a busy day, bounded for a huge desk
DEFAULT_FLOOR_S = 15 * 60.0
DEFAULT_MARGIN = 0.5
# Measured times are kept between these bounds: a burst of one-click approvals is not a working pace.
MIN_HANDLE_S = 60.0
MAX_HANDLE_S = 2 * 3600.0
MORNING_ENDS_H = 12
# A busy desk's measured rates are reused for a short while (``HandlingRates.recent``): reading its last 5,000
# answers on every sweep was a fifth of the workers' Python time at 50 posts/s (issue 17's profile, 2026-12-07),
# and a day's average over thousands of answers moves little in half a minute. Below REUSE_FROM answers the read
# is cheap, and every sweep measures afresh (a new team's first answers change its promises at once).
REUSE_FROM = 200
REUSE_S = 30.0
QUARTER_S = 15 * 60


@dataclass(frozen=True, slots=True)
class PromiseRules:
    """The knobs of a promise: the lane's floor (never promise sooner) and the safety margin."""

    floor_s: float = DEFAULT_FLOOR_S
    margin: float = DEFAULT_MARGIN


@dataclass(slots=True)
class HandlingRates:
    """Seconds one answer takes per lane, measured on the answers the team sent in the recent past."""

    handle_s: dict[str, float] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, *, now: datetime) -> HandlingRates:
        """Measure each lane's time per answer over the recent past, smoothed toward the default.

        One answer's handling time is from when its author could start on it (their previous answer, or the
        suggestion's creation when they were idle) to when it went out: neither idle time on a quiet day nor
        the wait in a long queue counts as work.
        """
        rows = session.execute(
            select(
                col(Reply.author_staff_id),
                col(Reply.approved_by_id),
                col(Reply.created_at),
                col(Reply.sent_at),
                Score.crisis,
                Score.complaint,
            )  # type: ignore[call-overload]
            .join(Score, col(Score.post_id) == col(Reply.post_id))
            .where(
                col(Reply.kind) == ReplyKind.ANSWER,
                col(Reply.state) == ReplyState.SENT,
                col(Reply.sent_at) >= now - RATE_WINDOW,
            )
            .order_by(col(Reply.sent_at).desc())
            .limit(RATE_SAMPLE)
        ).all()
        by_person: dict[int, list[tuple[datetime, datetime, str]]] = defaultdict(list)
        for author_id, approver_id, created_at, sent_at, crisis, complaint in rows:
            who = author_id if author_id is not None else (approver_id if approver_id is not None else -1)
            name = lane(crisis=bool(crisis), complaint=float(complaint))
            by_person[who].append((aware(sent_at), aware(created_at), name))
        spent: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for answers in by_person.values():
            answers.sort()
            previous: datetime | None = None
            for sent, created, name in answers:
                start = created if previous is None else max(previous, created)
                spent[name] += min(MAX_HANDLE_S, max(0.0, (sent - start).total_seconds()))
                counts[name] += 1
                previous = sent
        rates = cls()
        for name, n in counts.items():
            smoothed = (spent[name] + PRIOR_ANSWERS * DEFAULT_HANDLE_S) / (n + PRIOR_ANSWERS)
            rates.handle_s[name] = min(MAX_HANDLE_S, max(MIN_HANDLE_S, smoothed))
            rates.answers[name] = n
        return rates

    @classmethod
    def recent(cls, session: Session, *, now: datetime) -> HandlingRates:
        """``load``, reused for up to REUSE_S when it measured a busy desk (REUSE_FROM answers or more)."""
        engine = session.get_bind()
        if not isinstance(engine, Engine):
            # A session on one connection may read its own uncommitted rows: never share those with the engine.
            return cls.load(session, now=now)
        clock = time.monotonic()
        with _REUSED_LOCK:
            kept = _REUSED.get(engine)
        if kept is not None and clock - kept.clock <= REUSE_S and 0.0 <= (now - kept.now).total_seconds() <= REUSE_S:
            return kept.rates
        rates = cls.load(session, now=now)
        if sum(rates.answers.values()) >= REUSE_FROM:
            with _REUSED_LOCK:
                _REUSED[engine] = _Measured(rates, clock, now)
        return rates

    def seconds(self, lane_name: str) -> float:
        """Seconds one answer takes in ``lane_name`` (the default where nothing was measured)."""
        return self.handle_s.get(lane_name, DEFAULT_HANDLE_S)


@dataclass(frozen=True, slots=True)
class _Measured:
    """Rates measured at ``now`` (``clock`` on this process's monotonic clock)."""

    rates: HandlingRates
    clock: float
    now: datetime


# Per database (engine), so tests and tools with several databases in one process never share measurements.
_REUSED: weakref.WeakKeyDictionary[Engine, _Measured] = weakref.WeakKeyDictionary()
_REUSED_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Promise:
    """What we tell a customer: words rounded up from the forecast, and the time those words mean."""

    at: datetime
    made_at: datetime
    unit: str  # minutes, hours, tomorrow_morning, tomorrow or days
    count: int
    basis: dict[str, Any]

    def words(self, language: str) -> str:
        """The promise as a customer reads it, e.g. 'within 2 hours' or 'mañana por la mañana'."""
        return promise_words(self.unit, self.count, language)

    def clock(self) -> str:
        """The promised time on the owner's clock ('14:30'), as staff and customers read it."""
        return self.at.astimezone(ZoneInfo(str(self.basis.get("timezone", "UTC")))).strftime("%H:%M")

    def span(self, language: str) -> str:
        """The promise as a length of time only ('2 hours'), for saved replies that say 'within {sla}'."""
        return duration_words((self.at - self.made_at).total_seconds(), language)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def duration_words(seconds: float, language: str) -> str:
    """A length of time in words with correct plurals: '1 minute', '45 minutos', '2 hours', '3 días'."""
    es = language == "es"
    minutes = max(1, math.ceil(seconds / 60 - 1e-9))
    if minutes < 60:
        return _plural(minutes, "minuto", "minutos") if es else _plural(minutes, "minute", "minutes")
    hours = math.ceil(minutes / 60 - 1e-9)
    if hours < 48:
        return _plural(hours, "hora", "horas") if es else _plural(hours, "hour", "hours")
    days = math.ceil(hours / 24 - 1e-9)
    return _plural(days, "día", "días") if es else _plural(days, "day", "days")


def promise_words(unit: str, count: int, language: str) -> str:
    """Words for a rounded promise in Spanish or English (anything else is English)."""
    es = language == "es"
    if unit == "tomorrow_morning":
        return "mañana por la mañana" if es else "tomorrow morning"
    if unit == "tomorrow":
        return "mañana" if es else "tomorrow"
    names = {
        "minutes": (("minuto", "minutos"), ("minute", "minutes")),
        "hours": (("hora", "horas"), ("hour", "hours")),
        "days": (("día", "días"), ("day", "days")),
    }[unit]
    one, many = names[0] if es else names[1]
    return f"en menos de {_plural(count, one, many)}" if es else f"within {_plural(count, one, many)}"


def round_up(now: datetime, ready: datetime, *, tz: str = "UTC") -> tuple[str, int, datetime]:
    """Round a forecast up to human units; return (unit, count, the time the words promise).

    Up to 45 minutes: quarter hours. Up to 6 hours, or later the same local day: whole hours. The next local
    morning: "tomorrow morning" (until noon); the rest of the next day: "tomorrow" (until its end); further
    out: whole days.
    """
    now, ready = aware(now), aware(ready)
    seconds = max(0.0, (ready - now).total_seconds())
    if seconds <= 3 * QUARTER_S:
        quarters = max(1, math.ceil(seconds / QUARTER_S - 1e-9))
        return "minutes", quarters * 15, now + timedelta(minutes=quarters * 15)
    zone = ZoneInfo(tz)
    days_apart = (ready.astimezone(zone).date() - now.astimezone(zone).date()).days
    if seconds <= 6 * 3600 or days_apart == 0:
        hours = math.ceil(seconds / 3600 - 1e-9)
        return "hours", hours, now + timedelta(hours=hours)
    if days_apart == 1:
        day = ready.astimezone(zone).date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        if ready.astimezone(zone).hour < MORNING_ENDS_H:
            return "tomorrow_morning", 1, aware(midnight + timedelta(hours=MORNING_ENDS_H))
        return "tomorrow", 1, aware(midnight + timedelta(days=1))
    days = math.ceil(seconds / 86400 - 1e-9)
    return "days", days, now + timedelta(days=days)


def forecast(
    *,
    now: datetime,
    ahead: int,
    lane_name: str,
    shifts: Iterable[Window] = (),
    rates: HandlingRates | None = None,
    rules: PromiseRules | None = None,
) -> Promise:
    """Forecast when the owner answers a post with ``ahead`` posts before it, and round it to a promise."""
    rules = rules or PromiseRules()
    rates = rates or HandlingRates()
    windows = list(shifts)
    now = aware(now)
    handle = rates.seconds(lane_name)
    work = (max(0, ahead) + 1) * handle * (1.0 + max(0.0, rules.margin))
    # Working time runs only on shift: a queue that outlasts today's shift carries over to the next one.
    ready = add_business_seconds(now, math.ceil(work), windows)
    ready = max(ready, now + timedelta(seconds=rules.floor_s))
    tz = windows[0].timezone if windows else "UTC"
    unit, count, at = round_up(now, ready, tz=tz)
    basis = {
        "made_at": now.isoformat(),
        "forecast_at": ready.isoformat(),
        "ahead": int(ahead),
        "lane": lane_name,
        "handle_s": round(handle, 1),
        "measured_answers": rates.answers.get(lane_name, 0),
        "margin": rules.margin,
        "floor_s": rules.floor_s,
        "on_shifts": bool(windows),
        "timezone": tz,
    }
    return Promise(at=at, made_at=now, unit=unit, count=count, basis=basis)


def queues_ahead(session: Session, posts: Sequence[Post]) -> dict[int, int]:
    """``queue_ahead`` for many posts in one statement (a sweep's acknowledgements), by post id."""
    owned = [p.id for p in posts if p.id is not None and p.assignee_id is not None]
    if not owned:
        return {}
    target, other = aliased(Post), aliased(Post)
    urgency, theirs = func.coalesce(col(target.urgency), 0), func.coalesce(col(other.urgency), 0)
    rows = session.execute(
        select(col(target.id), func.count(col(other.id)))
        .join(other, col(other.assignee_id) == col(target.assignee_id))
        .where(
            col(target.id).in_(owned),
            col(other.status) == PostStatus.ASSIGNED,
            col(other.id) != col(target.id),
            or_(theirs > urgency, (theirs == urgency) & (col(other.created_at) < col(target.created_at))),
        )
        .group_by(col(target.id))
    ).all()
    counts = {int(pid): int(n) for pid, n in rows}
    return {pid: counts.get(pid, 0) for pid in owned}


def queue_ahead(session: Session, post: Post) -> int:
    """Count the owner's open posts that come before ``post`` (more urgent, or as urgent and older)."""
    if post.assignee_id is None:
        return 0
    urgency = post.urgency if post.urgency is not None else 0
    count = session.execute(
        select(func.count())
        .select_from(Post)
        .where(
            col(Post.assignee_id) == post.assignee_id,
            col(Post.status) == PostStatus.ASSIGNED,
            col(Post.id) != post.id,
            or_(
                func.coalesce(col(Post.urgency), 0) > urgency,
                (func.coalesce(col(Post.urgency), 0) == urgency) & (col(Post.created_at) < post.created_at),
            ),
        )
    ).scalar_one()
    return int(count)
