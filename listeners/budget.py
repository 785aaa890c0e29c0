"""The monthly read budget of a network (X bills reads): how much is spent and how slow to poll to stay within it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from networks.settings import NetworkSettings


@dataclass(frozen=True, slots=True)
class Spend:
    """Reads this month over a network's sources."""

    posts_read: int
    requests: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Pace:
    """The budget's verdict: when the next poll may run (None: on its own schedule) and why."""

    used: float  # share of the tightest budget spent, 0..1+
    elapsed: float  # share of the month gone, 0..1
    not_before: datetime | None
    note: str | None


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The start of ``now``'s UTC month and of the next one."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


@dataclass(frozen=True, slots=True)
class ReadBudget:
    """Monthly caps on posts read, requests made and estimated cost; any of them may be unset."""

    posts: int | None = None
    requests: int | None = None
    cost_usd: float | None = None
    cost_per_post_usd: float = 0.0
    cost_per_request_usd: float = 0.0

    @classmethod
    def of(cls, network: NetworkSettings) -> ReadBudget:
        """A network's budget from its settings (``ESCUCHA_<NAME>_MONTHLY_…_BUDGET``, prices per read)."""
        return cls(
            posts=network.monthly_post_budget,
            requests=network.monthly_request_budget,
            cost_usd=network.monthly_cost_budget_usd,
            cost_per_post_usd=network.cost_per_post_usd,
            cost_per_request_usd=network.cost_per_request_usd,
        )

    @property
    def limited(self) -> bool:
        """Whether any cap is set."""
        return any(v is not None for v in (self.posts, self.requests, self.cost_usd))

    def spend(self, *, posts_read: int, requests: int) -> Spend:
        """What ``posts_read`` and ``requests`` cost."""
        cost = posts_read * self.cost_per_post_usd + requests * self.cost_per_request_usd
        return Spend(posts_read, requests, round(cost, 4))

    def pace(self, spend: Spend, now: datetime) -> Pace:
        """Spread the budget evenly over the month: when spending runs ahead, wait until the month catches up."""
        start, end = month_bounds(now)
        month = (end - start).total_seconds()
        elapsed = (now - start).total_seconds() / month
        shares = [
            spent / cap
            for spent, cap in (
                (spend.posts_read, self.posts),
                (spend.requests, self.requests),
                (spend.cost_usd, self.cost_usd),
            )
            if cap
        ]
        used = max(shares, default=0.0)
        if used >= 1.0:
            note = f"monthly read budget spent ({used:.0%}); polling paused until {end:%Y-%m-%d}"
            return Pace(used, elapsed, end, note)
        if used > elapsed:
            catch_up = start + (end - start) * used
            note = (
                f"read budget ahead of pace ({used:.0%} used, {elapsed:.0%} of the month gone); "
                f"polling slowed until {catch_up:%Y-%m-%d %H:%M} UTC"
            )
            return Pace(used, elapsed, catch_up, note)
        return Pace(used, elapsed, None, None)
