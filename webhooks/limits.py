"""Per-address request allowance for the receiver: a token bucket per source address, bounded in memory."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

# Addresses remembered at once; the least recently seen is forgotten first (a full bucket is the default anyway).
MAX_ADDRESSES = 10_000


class AddressLimiter:
    """``rate_per_minute`` requests per address, refilled continuously, with a burst of the same size."""

    def __init__(self, rate_per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = max(1.0, rate_per_minute)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """Spend one request for ``address``: 0 when allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            self._buckets[address] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)
            return wait
