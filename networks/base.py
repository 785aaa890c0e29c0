"""What every network module provides: incoming posts, fetch results, senders and our three errors."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from models.watch import Watch


class ListenerError(Exception):
    """Base class of the errors a network adapter may raise."""


class AuthFailed(ListenerError):
    """Credentials were refused: stop the source and tell an admin."""


# The longest pause a network's word can impose on a source: a junk reset header must neither stop a source
# for years nor overflow the scheduler's clock (``now + timedelta(seconds=retry_after)``).
MAX_RETRY_AFTER = 86_400.0


class RateLimited(ListenerError):
    """The network asked us to wait ``retry_after`` seconds: reschedule, never sleep in a job."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        finite = math.isfinite(retry_after)
        self.retry_after = min(max(retry_after, 1.0), MAX_RETRY_AFTER) if finite else MAX_RETRY_AFTER


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
    # A paged fetch's resume point, saved with these posts: None leaves it as is, {} clears it (done).
    paging: dict[str, Any] | None = None
    # Items the network returned (what X bills as posts read), including ones skipped or already stored.
    items_read: int | None = None
    # Watched posts to add or update, and ones whose window ended: saved with these posts.
    watch: list[Watch] = field(default_factory=list)
    unwatch: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The last ``x-rate-limit-*`` headers an endpoint answered with."""

    limit: int
    remaining: int
    reset: int  # unix seconds

    def as_json(self) -> dict[str, Any]:
        """The three numbers as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SentReply:
    """The network's record of a reply we sent."""

    external_id: str
    url: str | None = None


@runtime_checkable
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


@runtime_checkable
class PagedListener(Listener, Protocol):
    """A source whose fetch is committed page by page and can resume an interrupted run."""

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield one result per page; each carries the ``paging`` state to save with its posts."""
        ...


@runtime_checkable
class WatchingListener(PagedListener, Protocol):
    """A paged source that also reads the replies of watched posts, each from its own cursor."""

    def set_watched(self, watched: list[Watch]) -> None:
        """Start from the stored watched posts (the poller loads them before each poll)."""
        ...


@runtime_checkable
class QuotaReporter(Protocol):
    """Optional capability of a ``Listener``: the rate-limit headers the network last sent, per endpoint."""

    def quota(self) -> dict[str, RateLimit]:
        """The last ``RateLimit`` seen on each endpoint."""
        ...


@runtime_checkable
class Sender(Protocol):
    """Sends replies on one network."""

    network: str

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        """Send ``text`` as a reply to the post ``external_id``; return the network's reply."""
        ...


def merge_pages(pages: Iterator[FetchResult], cursor: str | None) -> FetchResult:
    """Fold a paged fetch into one result; an unfinished run keeps ``cursor`` so nothing is skipped."""
    merged = FetchResult(posts=[], next_cursor=cursor, requests_made=0, items_read=0)
    count, unfinished = 0, False
    for page in pages:
        count, unfinished = count + 1, bool(page.paging)
        merged.posts.extend(page.posts)
        merged.skipped.extend(page.skipped)
        merged.requests_made += page.requests_made
        merged.items_read = (merged.items_read or 0) + (page.items_read or len(page.posts))
        if page.seen_ids is not None:
            merged.seen_ids = page.seen_ids
        if page.next_cursor is not None:
            merged.next_cursor = page.next_cursor
        merged.watch.extend(page.watch)
        merged.unwatch.extend(page.unwatch)
    if unfinished:
        merged.skipped.append(f"stopped after {count} pages; the cursor stays so the rest is fetched later")
    return merged


_URL = re.compile(r"https?://\S+")


def same_reply_text(ours: str, theirs: str) -> bool:
    """Tell whether the network's copy of a reply is the text we sent (whitespace, NFC and URLs aside)."""

    def norm(text: str) -> str:
        # Networks shorten links (t.co) and may trim whitespace; neither makes it a different reply.
        return " ".join(_URL.sub("<url>", unicodedata.normalize("NFC", text)).split())

    return norm(ours) == norm(theirs)


def created_before(created: datetime | None, not_before: datetime | None) -> bool:
    """Tell whether a network item created at ``created`` is older than ``not_before`` (unknown times are not)."""
    return created is not None and not_before is not None and created < not_before


# A reply lookup pages back to the reply's approval time, never by a fixed count; past this many pages it
# gives up for now (``TemporaryFailure``) and the outbox keeps the reply in ``sending`` to look again later.
LOOKUP_MAX_PAGES = 50


@runtime_checkable
class ReplyLookup(Protocol):
    """Optional capability of a ``Sender``: find a reply we may already have sent (crash reconciliation)."""

    def find_reply(
        self,
        *,
        external_id: str,
        kind: str,
        author_external_id: str | None,
        text: str,
        idempotency_key: str,
        not_before: datetime | None = None,
    ) -> SentReply | None:
        """Return our account's reply with ``text`` to ``external_id`` (or DM to the author), if it exists.

        Messages created before ``not_before`` (the reply's approval, less the clock skew) are not this reply,
        even with the same words: a thread can hold an identical earlier message that was really sent. The
        lookup pages back to ``not_before`` however many newer items there are; when it cannot finish (rate
        limit, error, ``LOOKUP_MAX_PAGES``) it raises ``RateLimited`` or ``TemporaryFailure``, never None.
        """
        ...


@runtime_checkable
class PrivateReplier(Protocol):
    """Optional capability of a ``Sender``: answer a public comment in the commenter's inbox (once, as allowed)."""

    def send_private_reply(self, *, external_id: str, text: str, idempotency_key: str) -> SentReply:
        """Send ``text`` privately to the author of comment ``external_id``; return the network's message."""
        ...

    def find_private_reply(
        self, *, external_id: str, author_external_id: str | None, text: str, not_before: datetime | None = None
    ) -> SentReply | None:
        """Return the private reply with ``text`` to comment ``external_id`` if it was sent (crash reconciliation)."""
        ...


class WebhookRefused(ValueError):
    """A signed delivery whose envelope is not what the network sends (the receiver answers 4xx, never stores)."""


@dataclass(slots=True)
class WebhookBatch:
    """What one verified webhook delivery carried: its posts, what was skipped and why, its newest event time."""

    posts: list[IncomingPost] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sent_at: datetime | None = None

    def saw(self, at: datetime | None) -> None:
        """Keep the newest event time of the delivery."""
        if at is not None and (self.sent_at is None or at > self.sent_at):
            self.sent_at = at
