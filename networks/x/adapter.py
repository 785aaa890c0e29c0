"""X (API v2 through tweepy): the client factory, the mention/search/DM listeners and the reply sender."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import requests
import tweepy

from ground.redact import redact, reveal
from ground.settings import Settings
from networks.base import (
    LOOKUP_MAX_PAGES,
    AuthFailed,
    FetchResult,
    IncomingAuthor,
    IncomingPost,
    PermanentFailure,
    RateLimit,
    RateLimited,
    SentReply,
    TemporaryFailure,
    created_before,
    merge_pages,
    same_reply_text,
)
from networks.http import endpoint_limits, with_retries
from networks.x.settings import XSettings

NETWORK = "x"
TWITTER_EPOCH_MS = 1288834974657
TWEET_FIELDS = [
    "created_at",
    "conversation_id",
    "lang",
    "in_reply_to_user_id",
    "referenced_tweets",
    "author_id",
    "entities",
]
USER_FIELDS = ["public_metrics", "verified", "username", "name"]
EXPANSIONS = ["author_id", "referenced_tweets.id"]
DM_EVENT_FIELDS = ["id", "event_type", "text", "sender_id", "dm_conversation_id", "created_at"]
DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_PAGES = 5
LOOKUP_PAGE_SIZE = 100
# ``GET /2/users/:id/tweets`` reaches back this many of the user's tweets, whatever the time bounds.
TIMELINE_DEPTH = 3200

Json = dict[str, Any]


_LEADING_MENTIONS = re.compile(r"^(?:@\w{1,15}\s+)+")


def same_x_text(ours: str, theirs: str) -> bool:
    """Tell whether X's copy of a reply is the text we sent, as X shows it.

    X returns text HTML-escaped (``&amp;``, ``&lt;``, ``&gt;``) and puts the replied-to handles in front of a
    reply's text; neither makes it another reply, and missing it after a crash would send the reply twice.
    """
    return same_reply_text(_LEADING_MENTIONS.sub("", ours), _LEADING_MENTIONS.sub("", html.unescape(theirs)))


def make_x_client(settings: Settings | XSettings, session: requests.Session) -> tweepy.Client:
    """Build the one tweepy client for X from settings, talking through ``session``."""
    x = settings if isinstance(settings, XSettings) else XSettings.of(settings)
    client = tweepy.Client(
        bearer_token=reveal(x.bearer_token),
        consumer_key=reveal(x.consumer_key),
        consumer_secret=reveal(x.consumer_secret),
        access_token=reveal(x.access_token),
        access_token_secret=reveal(x.access_token_secret),
        # Plain dicts keep the payload exactly as X sent it, for ``IncomingPost.raw``.
        return_type=dict,
        # Never sleep inside a job: a 429 becomes RateLimited and the poller reschedules.
        wait_on_rate_limit=False,
    )
    client.session = session
    return client


def _retry_after(exc: tweepy.TooManyRequests) -> float:
    reset = exc.reset_time
    if reset is None:
        try:
            reset = int(exc.response.headers["x-rate-limit-reset"])
        except (AttributeError, KeyError, ValueError):
            return 60.0
    try:
        return max(1.0, reset - time.time())  # RateLimited bounds it: a reset years away is a junk header
    except (TypeError, OverflowError):
        return 60.0


@contextmanager
def x_errors(action: str, *, sending: bool = False) -> Iterator[None]:
    """Translate tweepy/requests errors raised inside the block into Escucha's listener errors."""
    try:
        yield
    except tweepy.TooManyRequests as exc:
        raise RateLimited(f"X {action}: rate limited", retry_after=_retry_after(exc)) from exc
    except tweepy.Unauthorized as exc:
        raise AuthFailed(f"X {action}: credentials refused ({redact(str(exc))})") from exc
    except tweepy.Forbidden as exc:
        # On a send, 403 means this reply is not allowed (e.g. the 2026 mention rule); auth still works.
        if sending:
            raise PermanentFailure(f"X {action}: refused ({redact(str(exc))})") from exc
        raise AuthFailed(f"X {action}: forbidden ({redact(str(exc))})") from exc
    except tweepy.BadRequest as exc:
        if sending:
            raise PermanentFailure(f"X {action}: bad request ({redact(str(exc))})") from exc
        raise TemporaryFailure(f"X {action}: bad request ({redact(str(exc))})") from exc
    except tweepy.HTTPException as exc:  # 5xx and anything else unexpected from the server
        raise TemporaryFailure(f"X {action}: {redact(str(exc))}") from exc
    except (requests.RequestException, ValueError) as exc:  # timeouts, connection errors, bad JSON
        # A connection error's text carries the URL it failed on: mask credentials before it is stored or shown.
        raise TemporaryFailure(redact(f"X {action}: {type(exc).__name__}: {exc}")) from exc
    except (TypeError, KeyError, AttributeError) as exc:
        # tweepy reading an error body that is JSON but not an object (e.g. ``[]``): a malformed answer.
        raise TemporaryFailure(f"X {action}: malformed response ({type(exc).__name__}: {exc})") from exc


def call_with_retries(call: Callable[[], Any], action: str, retries: int) -> Any:
    """Run one X request, retrying temporary failures ``retries`` times with a short backoff."""

    def once() -> Any:
        with x_errors(action):
            return call()

    return with_retries(once, retries)


def snowflake_time(tweet_id: str) -> datetime:
    """The creation time X encodes in a tweet or event id; ``ValueError`` when the id holds no time."""
    try:
        return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"id {tweet_id[:40]!r} holds no representable time") from exc


def _created(item: Json) -> datetime | None:
    """When a tweet or DM event was created (its ``created_at``, else its snowflake id); None when unreadable."""
    try:
        return parse_x_time(item.get("created_at"), str(item.get("id", "")))
    except (ValueError, TypeError):
        return None


def parse_x_time(value: Any, external_id: str) -> datetime:
    """Parse X's ``created_at`` (``2022-11-07T18:11:04.000Z``); fall back to the snowflake when absent."""
    if value is None:
        return snowflake_time(external_id)
    if not isinstance(value, str):
        raise ValueError(f"created_at is not a string: {value!r:.80}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    try:
        # X always sends UTC; a time without an offset is read as UTC, not as this machine's zone.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00 falls before year 1 in UTC
        raise ValueError(f"created_at out of range: {value[:40]!r}") from exc


# Followers are stored in a 32-bit integer column; a larger or junk count is clamped, never a crash.
MAX_COUNT = 2**31 - 1


def _text(value: Any) -> str | None:
    """An optional text field: the value when it is a string, else None (junk is dropped, not kept)."""
    return value if isinstance(value, str) else None


def _id(value: Any) -> str | None:
    """An object id X sends as a string (a number is accepted); anything else is no id."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _snowflake(value: Any) -> str | None:
    """An id usable as ``since_id``/``until_id`` (ASCII digits of a sane length), else None."""
    text = _id(value)
    return text if text is not None and text.isascii() and text.isdigit() and len(text) <= 32 else None


def _count(value: Any) -> int:
    """A non-negative count that fits its column; junk counts as 0."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return min(max(number, 0), MAX_COUNT)


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Json]:
    """The objects of a list field; a missing or junk field is an empty list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _author(user_id: str | None, users: dict[str, Json]) -> IncomingAuthor | None:
    if not user_id:
        return None
    user = _dict(users.get(user_id))
    return IncomingAuthor(
        network=NETWORK,
        external_id=user_id,
        username=_text(user.get("username")) or "",
        display_name=_text(user.get("name")) or "",
        followers_count=_count(_dict(user.get("public_metrics")).get("followers_count")),
        verified=user.get("verified") is True,
    )


class XTweets:
    """Turns X payloads into ``IncomingPost``s for one brand account."""

    def __init__(self, *, brand_user_id: str | None, brand_username: str | None) -> None:
        self.brand_user_id = brand_user_id
        self.brand_username = (brand_username or "").lstrip("@").lower() or None

    def mentions_brand(self, tweet: Json) -> bool:
        """Whether the tweet @-mentions the brand (by entity id or by handle in the text)."""
        for mention in _dicts(_dict(tweet.get("entities")).get("mentions")):
            if self.brand_user_id and mention.get("id") == self.brand_user_id:
                return True
            if self.brand_username and str(mention.get("username", "")).lower() == self.brand_username:
                return True
        return bool(self.brand_username and f"@{self.brand_username}" in str(tweet.get("text", "")).lower())

    def quotes_brand(self, tweet: Json, included: dict[str, Json]) -> bool:
        """Whether the tweet quotes one of the brand's own tweets."""
        for ref in _dicts(tweet.get("referenced_tweets")):
            quoted = _dict(included.get(str(ref.get("id"))))
            if ref.get("type") == "quoted" and quoted and quoted.get("author_id") == self.brand_user_id:
                return True
        return False

    def tweet(
        self, tweet: Json, *, kind: str, source: str, users: dict[str, Json], included: dict[str, Json]
    ) -> IncomingPost:
        """Normalise one tweet; raise ``ValueError`` with the reason when it is malformed."""
        tweet_id, text = tweet.get("id"), tweet.get("text")
        if not isinstance(tweet_id, str) or not (tweet_id.isascii() and tweet_id.isdigit()):
            raise ValueError(f"tweet without a valid id: {tweet_id!r:.80}")
        if not isinstance(text, str):
            raise ValueError(f"tweet {tweet_id} has no text")
        author_id = _id(tweet.get("author_id"))
        author = _author(author_id, users)
        refs = _dicts(tweet.get("referenced_tweets"))
        replied_to = next((_id(r.get("id")) for r in refs if r.get("type") == "replied_to" and _id(r.get("id"))), None)
        manual_only = False
        if author_id is not None and author_id == self.brand_user_id:
            kind = "own"
        elif any(r.get("type") == "retweeted" for r in refs):
            # A plain retweet repeats someone else's words: context for the thread, not a message to answer.
            kind = "share"
        elif kind == "search" and self.mentions_brand(tweet):
            # A keyword hit that mentions the brand is a mention, whichever of the two sources reads it first:
            # the first one stores the post, so its kind must not depend on which poll ran first.
            kind = "mention"
        elif kind == "search":
            # X (Feb 2026): self-serve apps may only reply where the brand is mentioned or quoted.
            manual_only = not self.quotes_brand(tweet, included)
        username = author.username if author else ""
        url = f"https://x.com/{username}/status/{tweet_id}" if username else f"https://x.com/i/web/status/{tweet_id}"
        return IncomingPost(
            network=NETWORK,
            external_id=tweet_id,
            kind=kind,
            source=source,
            text=text,
            created_at=parse_x_time(tweet.get("created_at"), tweet_id),
            author=author,
            lang=_text(tweet.get("lang")),
            manual_only=manual_only,
            conversation_id=_id(tweet.get("conversation_id")),
            in_reply_to_external_id=replied_to,
            url=url,
            raw=tweet,
        )

    def dm(self, event: Json, *, users: dict[str, Json]) -> IncomingPost:
        """Normalise one DM event; raise ``ValueError`` with the reason when it is malformed."""
        event_id, text, sender = event.get("id"), event.get("text"), _id(event.get("sender_id"))
        if not isinstance(event_id, str) or not (event_id.isascii() and event_id.isdigit()):
            raise ValueError(f"DM event without a valid id: {event_id!r:.80}")
        if not isinstance(text, str):
            raise ValueError(f"DM event {event_id} has no text")
        if not sender:
            raise ValueError(f"DM event {event_id} has no sender_id")
        return IncomingPost(
            network=NETWORK,
            external_id=event_id,
            kind="own" if sender == self.brand_user_id else "dm",
            source="dms",
            text=text,
            created_at=parse_x_time(event.get("created_at"), event_id),
            author=_author(sender, users),
            is_public=False,
            conversation_id=_text(event.get("dm_conversation_id")),
            url=None,
            raw=event,
        )


def _index(response: Json) -> tuple[dict[str, Json], dict[str, Json]]:
    includes = _dict(response.get("includes"))
    users = {str(u.get("id")): u for u in _dicts(includes.get("users"))}
    tweets = {str(t.get("id")): t for t in _dicts(includes.get("tweets"))}
    return users, tweets


def _payload_errors(response: Json, source: str) -> list[str]:
    """Reasons for the ``errors`` X puts next to ``data`` in a 200 (deleted, withheld, suspended items)."""
    reasons = []
    errors = response.get("errors") or []
    for error in errors if isinstance(errors, list) else [errors]:
        if not isinstance(error, dict):
            reasons.append(f"{source}: error entry is not an object: {error!r:.80}")
            continue
        what = error.get("resource_type") or "item"
        which = error.get("resource_id") or error.get("value") or "?"
        why = error.get("detail") or error.get("title") or error.get("message") or "no detail"
        reasons.append(f"{source}: X reported {what} {which}: {str(why)[:200]}")
    return reasons


def _token(value: Any) -> str | None:
    """A ``next_token`` to page on with; junk (not text, or absurdly long) ends the run instead."""
    token = _id(value)
    return token if token is not None and len(token) <= 512 else None


def _items(response: Any, source: str) -> tuple[list[Any], list[str]]:
    """The ``data`` list of a response and the reasons it is partial or odd (never raises)."""
    if not isinstance(response, dict):
        return [], [f"{source}: response is not a JSON object: {type(response).__name__}"]
    data = response.get("data") or []
    reasons = _payload_errors(response, source)
    if not isinstance(data, list):
        return [], [*reasons, f"{source}: data is not a list: {type(data).__name__}"]
    return data, reasons


class _XSource:
    """What every X source shares: the client, the brand, paging bounds, credentials check and quota."""

    network = NETWORK
    source = ""
    endpoint = ""  # a path fragment naming this source's endpoint in the rate-limit table

    def __init__(
        self,
        client: tweepy.Client,
        *,
        brand_user_id: str | None,
        brand_username: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
        retries: int = 0,
    ) -> None:
        self.client = client
        self.tweets = XTweets(brand_user_id=brand_user_id, brand_username=brand_username)
        self.page_size = page_size
        self.max_pages = max_pages
        self.retries = retries

    def verify(self) -> None:
        """Check the user-context credentials with ``GET /2/users/me`` and learn the brand's id."""
        with x_errors("verify"):
            me = self.client.get_me(user_auth=True)
        data = _dict(_dict(me).get("data"))
        self.tweets.brand_user_id = self.tweets.brand_user_id or _id(data.get("id"))
        self.tweets.brand_username = self.tweets.brand_username or (_text(data.get("username")) or "").lower()

    def quota(self) -> dict[str, RateLimit]:
        """The last rate-limit headers of this source's endpoint(s), by path."""
        return endpoint_limits(self.client.session, self.endpoint)

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield this source's pages, each with the paging state that resumes the run after it."""
        raise NotImplementedError

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch everything newer than ``cursor`` in one result (at most ``max_pages`` pages).

        When the page bound stops the run early the cursor does not move, so nothing is skipped; the
        poller uses ``fetch_pages`` instead, which also resumes the run where it stopped.
        """
        return merge_pages(self.fetch_pages(cursor, seen_ids, {}), cursor)


class _XTimelineListener(_XSource):
    """Shared paging for the since_id timelines (mentions, recent search), committed page by page.

    A run starts from the stored since_id and remembers the first page's ``newest_id``; each page is
    saved with ``paging`` = {since, newest, token, oldest}, so a crash or the page bound resumes from
    the saved token next run, and the cursor moves to ``newest`` only once the last page is stored.
    """

    kind = ""
    token_param = "pagination_token"  # noqa: S105 (a parameter name, not a secret)

    def _call(self, **params: Any) -> Json:
        raise NotImplementedError

    def _page(self, params: Json, *, resuming: bool, oldest: str | None) -> Json:
        try:
            return call_with_retries(lambda: self._call(**params), f"{self.source} fetch", self.retries)
        except TemporaryFailure as exc:
            # A saved page token may have expired across a restart: page on with until_id instead.
            bad_token = isinstance(exc.__cause__, tweepy.BadRequest)
            if not (resuming and bad_token and oldest):
                raise
            params[self.token_param] = None
            params["until_id"] = oldest
            return call_with_retries(lambda: self._call(**params), f"{self.source} fetch", self.retries)

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield each page newer than ``cursor`` (or of the run saved in ``paging``), with its resume state."""
        resuming = bool(paging.get("token") or paging.get("until"))
        since = paging.get("since") if resuming else cursor
        newest: str | None = paging.get("newest") if resuming else None
        token: str | None = paging.get("token") if resuming else None
        until: str | None = paging.get("until") if resuming else None
        oldest: str | None = paging.get("oldest") if resuming else None
        for page_number in range(1, self.max_pages + 1):
            params: Json = {
                "since_id": since,
                "max_results": self.page_size,
                "expansions": EXPANSIONS,
                "tweet_fields": TWEET_FIELDS,
                "user_fields": USER_FIELDS,
                self.token_param: token,
            }
            if until:
                params["until_id"] = until
            response = self._page(params, resuming=resuming and page_number == 1, oldest=oldest)
            until = params.get("until_id")
            data, skipped = _items(response, self.source)
            meta = _dict(response.get("meta") if isinstance(response, dict) else None)
            # X's recipe: the first page's newest_id covers everything this run pages through.
            newest = newest or _snowflake(meta.get("newest_id"))
            users, included = _index(response) if isinstance(response, dict) else ({}, {})
            posts: list[IncomingPost] = []
            for item in data:
                if not isinstance(item, dict):
                    skipped.append(f"{self.source}: item is not an object: {item!r:.80}")
                    continue
                try:
                    posts.append(
                        self.tweets.tweet(item, kind=self.kind, source=self.source, users=users, included=included)
                    )
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    skipped.append(f"{self.source} {item.get('id') if isinstance(item, dict) else '?'}: {exc}")
            token = _token(meta.get("next_token"))
            oldest = _snowflake(meta.get("oldest_id")) or oldest
            if token is None:
                yield FetchResult(posts, next_cursor=newest or cursor, requests_made=1, skipped=skipped,
                                  paging={}, items_read=len(data))  # fmt: skip
                return
            state = {"since": since, "newest": newest, "token": token, "oldest": oldest, "until": until}
            yield FetchResult(posts, next_cursor=None, requests_made=1, skipped=skipped, paging=state,
                              items_read=len(data))  # fmt: skip


class XMentionsListener(_XTimelineListener):
    """Tweets that @-mention the brand (``GET /2/users/:id/mentions``)."""

    source = "mentions"
    kind = "mention"
    endpoint = "/mentions"

    def _call(self, **params: Any) -> Json:
        if self.tweets.brand_user_id is None:
            self.verify()
        result: Json = self.client.get_users_mentions(
            self.tweets.brand_user_id, user_auth=self.client.bearer_token is None, **params
        )
        return result


class XSearchListener(_XTimelineListener):
    """Recent-search hits for a keyword query; hits without a mention or quote are manual-only."""

    source = "search"
    kind = "search"
    endpoint = "/tweets/search/recent"
    token_param = "next_token"  # noqa: S105 (a parameter name, not a secret)

    def __init__(self, client: tweepy.Client, *, query: str, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.query = query
        # Recent search accepts 10..100 results per page.
        self.page_size = max(10, self.page_size)

    def _call(self, **params: Any) -> Json:
        # Reads use the app's bearer token when there is one; user context is kept for DMs and sends.
        result: Json = self.client.search_recent_tweets(
            self.query, user_auth=self.client.bearer_token is None, **params
        )
        return result


class XDMListener(_XSource):
    """Direct messages to the brand (``GET /2/dm_events``); X has no since_id here, so seen ids dedupe."""

    source = "dms"
    endpoint = "/dm_events"

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield DM event pages newest first until one already seen; ``paging`` resumes a cut-off run."""
        if self.tweets.brand_user_id is None:
            self.verify()
        seen = set(seen_ids)
        token: str | None = paging.get("token")
        for _ in range(self.max_pages):
            params: Json = {
                "dm_event_fields": DM_EVENT_FIELDS,
                "event_types": "MessageCreate",
                "expansions": ["sender_id"],
                "user_fields": USER_FIELDS,
                "max_results": self.page_size,
                "pagination_token": token,
                "user_auth": True,
            }
            response = call_with_retries(partial(self.client.get_direct_message_events, **params), "dm fetch",
                                         self.retries)  # fmt: skip
            data, skipped = _items(response, "dms")
            users, _ = _index(response) if isinstance(response, dict) else ({}, {})
            posts: list[IncomingPost] = []
            reached_seen = False
            for event in data:
                if not isinstance(event, dict):
                    skipped.append(f"dms: event is not an object: {event!r:.80}")
                    continue
                event_id = str(event.get("id"))
                if event_id in seen:
                    reached_seen = True
                    continue
                if event.get("event_type", "MessageCreate") != "MessageCreate":
                    skipped.append(f"dms {event_id}: unknown event type {str(event.get('event_type'))[:40]!r}")
                else:
                    try:
                        posts.append(self.tweets.dm(event, users=users))
                    except (ValueError, TypeError, KeyError, AttributeError) as exc:
                        skipped.append(f"dms {event_id}: {exc}")
                if _snowflake(event_id):
                    seen.add(event_id)
            meta = _dict(response.get("meta") if isinstance(response, dict) else None)
            token = _token(meta.get("next_token"))
            done = reached_seen or token is None
            # Event ids are snowflakes: keep them in time order so trimming drops the oldest.
            yield FetchResult(
                posts,
                next_cursor=None,
                seen_ids=sorted(seen, key=int),
                requests_made=1,
                skipped=skipped,
                paging={} if done else {"token": token},
                items_read=len(data),
            )
            if done:
                return


class XSender:
    """Sends replies on X: a reply tweet for public posts, a DM for direct messages."""

    network = NETWORK

    def __init__(
        self, client: tweepy.Client, *, brand_user_id: str | None = None, lookup_max_pages: int = LOOKUP_MAX_PAGES
    ) -> None:
        self.client = client
        self.brand_user_id = brand_user_id
        self.lookup_max_pages = lookup_max_pages

    def _brand_id(self) -> str:
        if self.brand_user_id is None:
            with x_errors("verify"):
                me = self.client.get_me(user_auth=True)
            self.brand_user_id = str((me.get("data") or {}).get("id", ""))
        return self.brand_user_id

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
        """Look for our reply with ``text`` to tweet ``external_id`` (or our DM to the author) on X.

        Pages back to ``not_before`` (the approval, less the clock skew), however many newer items there are;
        items older than it are not this reply. ``TemporaryFailure`` when the walk cannot be finished.
        """
        del idempotency_key
        brand = self._brand_id()
        if kind == "dm":
            if not author_external_id:
                return None
            return self._find_dm(brand, author_external_id, text, not_before)
        return self._find_tweet(brand, external_id, text, not_before)

    def _lookup_pages(self, call: Callable[[str | None], Any], action: str) -> Iterator[list[Json]]:
        """Yield each page's items, newest first, following ``next_token``; raise past the page cap."""
        token: str | None = None
        for _ in range(self.lookup_max_pages):
            with x_errors(action):
                response = call(token)
            body = _dict(response)
            yield _dicts(body.get("data"))
            token = _token(_dict(body.get("meta")).get("next_token"))
            if token is None:
                return
        # Not settled is not absent: the outbox keeps the reply in ``sending`` and looks again later.
        raise TemporaryFailure(f"X {action}: not settled within {self.lookup_max_pages} pages")

    def _find_tweet(self, brand: str, external_id: str, text: str, not_before: datetime | None) -> SentReply | None:
        # Our reply is newer than the post and than its approval: the brand's timeline from then on holds it.
        # X refuses since_id together with start_time, so the later of the two bounds goes as start_time.
        bounds = [b for b in (not_before, _created({"id": _snowflake(external_id) or ""})) if b is not None]
        params: Json = {
            "start_time": max(bounds) if bounds else None,
            "exclude": ["retweets"],
            "max_results": LOOKUP_PAGE_SIZE,
            "tweet_fields": ["referenced_tweets", "created_at"],
            "user_auth": True,
        }
        read = 0
        pages = self._lookup_pages(
            lambda token: self.client.get_users_tweets(brand, pagination_token=token, **params), "look up reply"
        )
        for page in pages:
            read += len(page)
            for tweet in page:
                if created_before(_created(tweet), not_before):
                    return None  # the timeline is newest first: the rest is older than the approval too
                refs = _dicts(tweet.get("referenced_tweets"))
                replied = any(r.get("type") == "replied_to" and str(r.get("id")) == external_id for r in refs)
                tweet_id = _id(tweet.get("id"))
                if tweet_id and replied and same_x_text(text, str(tweet.get("text", ""))):
                    return SentReply(external_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")
        if read >= TIMELINE_DEPTH:
            # X serves a timeline's newest 3200 tweets only: the reply may lie beyond what it showed.
            raise TemporaryFailure(f"X look up reply: the brand tweeted {read}+ times since; check by hand")
        return None

    def _find_dm(self, brand: str, participant: str, text: str, not_before: datetime | None) -> SentReply | None:
        if _snowflake(participant) is None:
            # The id goes into the request path; a reply we cannot look up is never resent blind.
            raise PermanentFailure(f"X look up DM: not a user id: {participant[:40]!r}")
        pages = self._lookup_pages(
            lambda token: self.client.get_direct_message_events(
                participant_id=participant,
                dm_event_fields=DM_EVENT_FIELDS,
                event_types="MessageCreate",
                max_results=LOOKUP_PAGE_SIZE,
                pagination_token=token,
                user_auth=True,
            ),
            "look up DM",
        )
        # Only the one-to-one conversation with this customer: no other thread can hold the reply.
        for page in pages:
            for event in page:
                if created_before(_created(event), not_before):
                    return None  # events come newest first: the rest is older than the approval too
                event_id = _id(event.get("id"))
                if event_id and str(event.get("sender_id")) == brand and same_x_text(text, str(event.get("text", ""))):
                    conversation = _text(event.get("dm_conversation_id"))
                    url = f"https://x.com/messages/{conversation}" if conversation else None
                    return SentReply(external_id=event_id, url=url)
        return None

    def verify(self) -> None:
        """Check the user-context credentials with ``GET /2/users/me``."""
        with x_errors("verify"):
            self.client.get_me(user_auth=True)

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        """Reply to tweet ``external_id`` publicly, or DM ``author_external_id`` when ``kind`` is dm."""
        # X has no idempotency header; the outbox reconciles by looking the reply up before any retry.
        del idempotency_key
        send: Callable[[], Json]
        if kind == "dm":
            if not author_external_id:
                raise PermanentFailure("X DM reply needs the author's user id")
            send = lambda: self.client.create_direct_message(  # noqa: E731
                participant_id=author_external_id, text=text, user_auth=True
            )
        else:
            send = lambda: self.client.create_tweet(  # noqa: E731
                text=text, in_reply_to_tweet_id=external_id, user_auth=True
            )
        with x_errors("send reply", sending=True):
            response = send()
        data = response.get("data") or {}
        if kind == "dm":
            event_id = str(data.get("dm_event_id", ""))
            conversation = data.get("dm_conversation_id")
            url = f"https://x.com/messages/{conversation}" if conversation else None
            return SentReply(external_id=event_id, url=url)
        tweet_id = str(data.get("id", ""))
        return SentReply(external_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")
