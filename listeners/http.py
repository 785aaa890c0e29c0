"""The one HTTP session both network clients use: sandbox rewriting, default timeout, rate-limit headers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

# The hosts tweepy and facebook-sdk hard-code; only these are redirected to the sandbox.
REAL_BASES = ("https://api.twitter.com", "https://graph.facebook.com")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The last ``x-rate-limit-*`` headers an endpoint answered with."""

    limit: int
    remaining: int
    reset: int  # unix seconds


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
