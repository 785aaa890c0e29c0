"""The one HTTP session both network clients use: sandbox rewriting, default timeout, rate-limit headers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from listeners.base import TemporaryFailure

T = TypeVar("T")

# The hosts tweepy and facebook-sdk hard-code; only these are redirected to the sandbox.
REAL_BASES = ("https://api.twitter.com", "https://graph.facebook.com")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The last ``x-rate-limit-*`` headers an endpoint answered with."""

    limit: int
    remaining: int
    reset: int  # unix seconds

    def as_json(self) -> dict[str, int]:
        """The three numbers as a JSON-ready dict."""
        return asdict(self)


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
        try:
            limit = RateLimit(
                limit=int(headers["x-rate-limit-limit"]),
                remaining=int(headers["x-rate-limit-remaining"]),
                reset=int(headers["x-rate-limit-reset"]),
            )
        except (KeyError, ValueError):
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
