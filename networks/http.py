"""The one HTTP session both network clients use: sandbox rewriting, default timeout, rate-limit headers."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from networks.base import RateLimit, TemporaryFailure

T = TypeVar("T")

# The hosts tweepy and facebook-sdk hard-code; only these are redirected to the sandbox.
REAL_BASES = ("https://api.twitter.com", "https://graph.facebook.com")
DEFAULT_TIMEOUT = 10.0
# Graph's usage headers: JSON percentages of the app's, the page's and the business use case's quota.
GRAPH_USAGE_HEADERS = ("x-app-usage", "x-page-usage", "x-business-use-case-usage")
# Graph throttles at 100 % of a rolling hour; stopping at 95 % leaves room for replies and verify calls.
GRAPH_USAGE_STOP = 95
# Graph gives no reset time unless it names one (estimated_time_to_regain_access): look again after this.
GRAPH_USAGE_WAIT = 300
_GRAPH_VERSION = re.compile(r"^/v\d+\.\d+(?=/)")


@dataclass(frozen=True, slots=True)
class GraphUsage(RateLimit):
    """Graph's last usage headers on an endpoint, as a quota of 100 percentage points (the busiest one)."""

    used: int = 0  # the highest of call_count, total_time and total_cputime, in percent
    call_count: int = 0
    total_time: int = 0
    total_cputime: int = 0
    header: str = ""

    @property
    def exhausted(self) -> bool:
        """Whether usage reached the stop line and its wait has not yet passed."""
        return self.used >= GRAPH_USAGE_STOP and self.reset > time.time()

    def as_json(self) -> dict[str, Any]:
        """The quota in X's shape (limit/remaining/reset) plus Graph's own percentages."""
        return asdict(self)


def graph_usage(headers: Any, *, now: float | None = None) -> GraphUsage | None:
    """Read Graph's usage headers into one ``GraphUsage`` (None when there are none or none parse)."""
    found: list[tuple[int, str, dict[str, int], int]] = []
    for name in GRAPH_USAGE_HEADERS:
        try:
            payload = json.loads(headers[name])
        except (KeyError, TypeError, ValueError):
            continue
        # The business header nests its numbers per business id and use-case type; the others are flat.
        entries = [payload] if isinstance(payload, dict) and "call_count" in payload else []
        if isinstance(payload, dict) and not entries:
            entries = [e for v in payload.values() if isinstance(v, list) for e in v if isinstance(e, dict)]
        for entry in entries:
            try:
                numbers = {k: _bounded(entry.get(k), 10_000) for k in ("call_count", "total_time", "total_cputime")}
                # Minutes until the app may call again; more than a day is a junk header, not a plan.
                regain = _bounded(entry.get("estimated_time_to_regain_access"), 24 * 60) * 60
            except (TypeError, ValueError, OverflowError):
                continue
            found.append((max(numbers.values()), name, numbers, regain))
    if not found:
        return None
    used, name, numbers, _ = max(found, key=lambda f: f[0])
    wait = max((f[3] for f in found), default=0) or GRAPH_USAGE_WAIT
    # At the stop line the quota reads as used up, so the worker holds the source back like X's.
    remaining = 0 if used >= GRAPH_USAGE_STOP else max(0, 100 - used)
    return GraphUsage(
        limit=100,
        remaining=remaining,
        reset=int((time.time() if now is None else now) + wait),
        used=used,
        header=name,
        **numbers,
    )


def _bounded(value: Any, top: int) -> int:
    """An integer from a header field, clamped to ``0..top`` (``TypeError``/``ValueError``/``OverflowError``
    when it is no number at all, e.g. a list or ``Infinity``)."""
    return min(max(int(value or 0), 0), top)


def x_rate_limit(headers: Any, *, now: float | None = None) -> RateLimit | None:
    """Read X's ``x-rate-limit-*`` headers; None when absent or when they make no sense.

    A negative count or a reset more than a day away cannot be planned with (the worker turns the reset
    into a time), so such headers are ignored rather than stored.
    """
    try:
        limit = int(headers["x-rate-limit-limit"])
        remaining = int(headers["x-rate-limit-remaining"])
        reset = int(headers["x-rate-limit-reset"])
    except (KeyError, TypeError, ValueError):
        return None
    horizon = (time.time() if now is None else now) + 86_400
    if not (0 <= remaining <= limit < 2**31 and 0 <= reset <= horizon):
        return None
    return RateLimit(limit=limit, remaining=remaining, reset=reset)


def graph_endpoint(path: str) -> str:
    """Graph path without version and with object ids generalised: ``/v21.0/123_4/comments`` → ``/{id}/comments``.

    One key per edge keeps the recorded quotas bounded however many posts the listeners visit.
    """
    segments = [s for s in _GRAPH_VERSION.sub("", path).split("/") if s]
    if not segments:
        return "/?ids"  # the multi-id read (``GET /?ids=a,b``): the version's root names no object
    if segments[0] != "me":
        segments[0] = "{id}"
    return "/" + "/".join(segments)


class RewritingSession(requests.Session):
    """A ``requests.Session`` that can point the real clients at the sandbox and never waits forever."""

    def __init__(self, sandbox_url: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.sandbox_url = sandbox_url.rstrip("/") if sandbox_url else None
        self.timeout = timeout
        self.rate_limits: dict[str, RateLimit] = {}
        self._lock = threading.Lock()
        self.hooks["response"].append(self._record_rate_limit)

    def rewrite(self, url: str) -> str:
        """Return ``url`` moved onto the sandbox base when a sandbox is set (path and query kept)."""
        if self.sandbox_url is None:
            return url
        for base in REAL_BASES:
            if url == base or url.startswith(base + "/"):
                return self.sandbox_url + url[len(base) :]
        return url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Send a request, rewritten for the sandbox, with the default timeout unless one is given."""
        # facebook-sdk passes timeout=None explicitly, so setdefault is not enough.
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        text_url = url.decode() if isinstance(url, bytes) else url
        return super().request(method, self.rewrite(text_url), *args, **kwargs)

    def _record_rate_limit(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        headers = response.headers
        usage = graph_usage(headers)
        if usage is not None:
            with self._lock:
                self.rate_limits[graph_endpoint(urlsplit(response.url).path)] = usage
            return
        limit = x_rate_limit(headers)
        if limit is None:
            return
        with self._lock:
            self.rate_limits[urlsplit(response.url).path] = limit


def endpoint_limits(session: Any, fragment: str) -> dict[str, RateLimit]:
    """The rate limits ``session`` recorded for paths containing ``fragment`` (none for other sessions)."""
    limits: dict[str, RateLimit] = getattr(session, "rate_limits", None) or {}
    return {path: limit for path, limit in list(limits.items()) if fragment and fragment in path}


def with_retries(call: Callable[[], T], retries: int, *, max_wait: float = 4.0) -> T:
    """Run ``call``, retrying ``TemporaryFailure`` up to ``retries`` times with exponential backoff.

    Only for brief hiccups inside one fetch (a 500, a timeout); rate limits are never waited out here.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(TemporaryFailure),
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=0.25, max=max_wait),
        reraise=True,
    )
    return retrying(call)
