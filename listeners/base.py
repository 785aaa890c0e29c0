"""What every network module provides: incoming posts, fetch results, senders and our three errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class ListenerError(Exception):
    """Base class of the errors a network adapter may raise."""


class AuthFailed(ListenerError):
    """Credentials were refused: stop the source and tell an admin."""


class RateLimited(ListenerError):
    """The network asked us to wait ``retry_after`` seconds: reschedule, never sleep in a job."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TemporaryFailure(ListenerError):
    """A network or server hiccup: try again on the next tick."""


class PermanentFailure(ListenerError):
    """The network refused the request for good (e.g. reply window closed): do not retry."""


@dataclass(frozen=True, slots=True)
class IncomingAuthor:
    """An author as the network describes them."""

    network: str
    external_id: str
    username: str = ""
    display_name: str = ""
    followers_count: int = 0
    verified: bool = False


@dataclass(frozen=True, slots=True)
class IncomingPost:
    """A post normalised from a network payload, ready to be stored."""

    network: str
    external_id: str
    kind: str
    source: str
    text: str
    created_at: datetime  # timezone-aware
    author: IncomingAuthor | None = None
    lang: str | None = None
    is_public: bool = True
    manual_only: bool = False
    conversation_id: str | None = None
    in_reply_to_external_id: str | None = None
    url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FetchResult:
    """What one poll of a source returned: the posts and the cursor that covers them."""

    posts: list[IncomingPost]
    next_cursor: str | None
    seen_ids: list[str] | None = None
    requests_made: int = 1
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SentReply:
    """The network's record of a reply we sent."""

    external_id: str
    url: str | None = None


class Listener(Protocol):
    """One pollable source on one network (e.g. X mentions, Facebook page comments)."""

    network: str
    source: str

    def verify(self) -> None:
        """Check credentials; raise ``AuthFailed`` if they are refused."""
        ...

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch everything newer than ``cursor``."""
        ...


class Sender(Protocol):
    """Sends replies on one network."""

    network: str

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        """Send ``text`` as a reply to the post ``external_id``; return the network's reply."""
        ...
