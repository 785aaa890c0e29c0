"""X (API v2 through tweepy): the client factory, the mention/search/DM listeners and the reply sender."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests
import tweepy

from escucha.settings import Settings
from listeners.base import (
    AuthFailed,
    FetchResult,
    IncomingAuthor,
    IncomingPost,
    PermanentFailure,
    RateLimited,
    SentReply,
    TemporaryFailure,
)

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

Json = dict[str, Any]


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def make_x_client(settings: Settings, session: requests.Session) -> tweepy.Client:
    """Build the one tweepy client for X from settings, talking through ``session``."""
    client = tweepy.Client(
        bearer_token=_secret(settings.x_bearer_token),
        consumer_key=_secret(settings.x_consumer_key),
        consumer_secret=_secret(settings.x_consumer_secret),
        access_token=_secret(settings.x_access_token),
        access_token_secret=_secret(settings.x_access_token_secret),
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
    return max(1.0, reset - time.time())


@contextmanager
def x_errors(action: str, *, sending: bool = False) -> Iterator[None]:
    """Translate tweepy/requests errors raised inside the block into Escucha's listener errors."""
    try:
        yield
    except tweepy.TooManyRequests as exc:
        raise RateLimited(f"X {action}: rate limited", retry_after=_retry_after(exc)) from exc
    except tweepy.Unauthorized as exc:
        raise AuthFailed(f"X {action}: credentials refused ({exc})") from exc
    except tweepy.Forbidden as exc:
        # On a send, 403 means this reply is not allowed (e.g. the 2026 mention rule); auth still works.
        if sending:
            raise PermanentFailure(f"X {action}: refused ({exc})") from exc
        raise AuthFailed(f"X {action}: forbidden ({exc})") from exc
    except tweepy.BadRequest as exc:
        if sending:
            raise PermanentFailure(f"X {action}: bad request ({exc})") from exc
        raise TemporaryFailure(f"X {action}: bad request ({exc})") from exc
    except tweepy.HTTPException as exc:  # 5xx and anything else unexpected from the server
        raise TemporaryFailure(f"X {action}: {exc}") from exc
    except (requests.RequestException, ValueError) as exc:  # timeouts, connection errors, bad JSON
        raise TemporaryFailure(f"X {action}: {type(exc).__name__}: {exc}") from exc


def snowflake_time(tweet_id: str) -> datetime:
    """The creation time X encodes in a tweet or event id."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def parse_x_time(value: Any, external_id: str) -> datetime:
    """Parse X's ``created_at`` (``2022-11-07T18:11:04.000Z``); fall back to the snowflake when absent."""
    if value is None:
        return snowflake_time(external_id)
    if not isinstance(value, str):
        raise ValueError(f"created_at is not a string: {value!r}")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _author(user_id: str | None, users: dict[str, Json]) -> IncomingAuthor | None:
    if not user_id:
        return None
    user = users.get(user_id, {})
    metrics = user.get("public_metrics") or {}
    return IncomingAuthor(
        network=NETWORK,
        external_id=str(user_id),
        username=str(user.get("username") or ""),
        display_name=str(user.get("name") or ""),
        followers_count=int(metrics.get("followers_count") or 0),
        verified=bool(user.get("verified", False)),
    )


class XTweets:
    """Turns X payloads into ``IncomingPost``s for one brand account."""

    def __init__(self, *, brand_user_id: str | None, brand_username: str | None) -> None:
        self.brand_user_id = brand_user_id
        self.brand_username = (brand_username or "").lstrip("@").lower() or None

    def mentions_brand(self, tweet: Json) -> bool:
        """Whether the tweet @-mentions the brand (by entity id or by handle in the text)."""
        for mention in (tweet.get("entities") or {}).get("mentions", []):
            if self.brand_user_id and mention.get("id") == self.brand_user_id:
                return True
            if self.brand_username and str(mention.get("username", "")).lower() == self.brand_username:
                return True
        return bool(self.brand_username and f"@{self.brand_username}" in str(tweet.get("text", "")).lower())

    def quotes_brand(self, tweet: Json, included: dict[str, Json]) -> bool:
        """Whether the tweet quotes one of the brand's own tweets."""
        for ref in tweet.get("referenced_tweets") or []:
            quoted = included.get(str(ref.get("id")))
            if ref.get("type") == "quoted" and quoted and quoted.get("author_id") == self.brand_user_id:
                return True
        return False

    def tweet(
        self, tweet: Json, *, kind: str, source: str, users: dict[str, Json], included: dict[str, Json]
    ) -> IncomingPost:
        """Normalise one tweet; raise ``ValueError`` with the reason when it is malformed."""
        tweet_id, text = tweet.get("id"), tweet.get("text")
        if not isinstance(tweet_id, str) or not tweet_id.isdigit():
            raise ValueError(f"tweet without a valid id: {tweet_id!r}")
        if not isinstance(text, str):
            raise ValueError(f"tweet {tweet_id} has no text")
        author_id = tweet.get("author_id")
        author = _author(author_id, users)
        replied_to = next(
            (str(r["id"]) for r in tweet.get("referenced_tweets") or [] if r.get("type") == "replied_to"), None
        )
        manual_only = False
        if author_id is not None and author_id == self.brand_user_id:
            kind = "own"
        elif any(r.get("type") == "retweeted" for r in tweet.get("referenced_tweets") or []):
            # A plain retweet repeats someone else's words: context for the thread, not a message to answer.
            kind = "share"
        elif kind == "search":
            # X (Feb 2026): self-serve apps may only reply where the brand is mentioned or quoted.
            manual_only = not (self.mentions_brand(tweet) or self.quotes_brand(tweet, included))
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
            lang=tweet.get("lang"),
            manual_only=manual_only,
            conversation_id=tweet.get("conversation_id"),
            in_reply_to_external_id=replied_to,
            url=url,
            raw=tweet,
        )

    def dm(self, event: Json, *, users: dict[str, Json]) -> IncomingPost:
        """Normalise one DM event; raise ``ValueError`` with the reason when it is malformed."""
        event_id, text, sender = event.get("id"), event.get("text"), event.get("sender_id")
        if not isinstance(event_id, str) or not event_id.isdigit():
            raise ValueError(f"DM event without a valid id: {event_id!r}")
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
            author=_author(str(sender), users),
            is_public=False,
            conversation_id=event.get("dm_conversation_id"),
            url=None,
            raw=event,
        )


def _index(response: Json) -> tuple[dict[str, Json], dict[str, Json]]:
    includes = response.get("includes") or {}
    users = {str(u.get("id")): u for u in includes.get("users", []) if isinstance(u, dict)}
    tweets = {str(t.get("id")): t for t in includes.get("tweets", []) if isinstance(t, dict)}
    return users, tweets


class _XTimelineListener:
    """Shared paging for the since_id timelines (mentions, recent search)."""

    network = NETWORK
    source = ""
    kind = ""
    token_param = "pagination_token"  # noqa: S105 (a parameter name, not a secret)

    def __init__(
        self,
        client: tweepy.Client,
        *,
        brand_user_id: str | None,
        brand_username: str | None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.client = client
        self.tweets = XTweets(brand_user_id=brand_user_id, brand_username=brand_username)
        self.page_size = page_size
        self.max_pages = max_pages

    def verify(self) -> None:
        """Check the user-context credentials with ``GET /2/users/me`` and learn the brand's id."""
        with x_errors("verify"):
            me = self.client.get_me(user_auth=True)
        data = me.get("data") or {}
        self.tweets.brand_user_id = self.tweets.brand_user_id or data.get("id")
        self.tweets.brand_username = self.tweets.brand_username or str(data.get("username", "")).lower()

    def _call(self, **params: Any) -> Json:
        raise NotImplementedError

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch everything newer than ``cursor`` (a tweet id), newest first, a bounded number of pages."""
        posts: list[IncomingPost] = []
        skipped: list[str] = []
        next_cursor, token, requests_made = cursor, None, 0
        for _ in range(self.max_pages):
            params: Json = {
                "since_id": cursor,
                "max_results": self.page_size,
                "expansions": EXPANSIONS,
                "tweet_fields": TWEET_FIELDS,
                "user_fields": USER_FIELDS,
                self.token_param: token,
            }
            with x_errors(f"{self.source} fetch"):
                response = self._call(**params)
            requests_made += 1
            meta = response.get("meta") or {}
            if requests_made == 1 and meta.get("newest_id"):
                # X's recipe: the first page's newest_id covers everything this fetch pages through.
                next_cursor = str(meta["newest_id"])
            users, included = _index(response)
            for item in response.get("data") or []:
                try:
                    posts.append(
                        self.tweets.tweet(item, kind=self.kind, source=self.source, users=users, included=included)
                    )
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    skipped.append(f"{self.source} {item.get('id') if isinstance(item, dict) else '?'}: {exc}")
            token = meta.get("next_token")
            if not token:
                break
        else:
            skipped.append(f"{self.source}: stopped after {self.max_pages} pages; older new items not fetched")
        return FetchResult(posts=posts, next_cursor=next_cursor, requests_made=requests_made, skipped=skipped)


class XMentionsListener(_XTimelineListener):
    """Tweets that @-mention the brand (``GET /2/users/:id/mentions``)."""

    source = "mentions"
    kind = "mention"

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


class XDMListener:
    """Direct messages to the brand (``GET /2/dm_events``); X has no since_id here, so seen ids dedupe."""

    network = NETWORK
    source = "dms"

    def __init__(
        self,
        client: tweepy.Client,
        *,
        brand_user_id: str | None,
        brand_username: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.client = client
        self.tweets = XTweets(brand_user_id=brand_user_id, brand_username=brand_username)
        self.page_size = page_size
        self.max_pages = max_pages

    def verify(self) -> None:
        """Check the user-context credentials with ``GET /2/users/me``."""
        with x_errors("verify"):
            me = self.client.get_me(user_auth=True)
        self.tweets.brand_user_id = self.tweets.brand_user_id or (me.get("data") or {}).get("id")

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch DM events newest first until one already seen; return the updated seen ids."""
        if self.tweets.brand_user_id is None:
            self.verify()
        seen = set(seen_ids)
        posts: list[IncomingPost] = []
        skipped: list[str] = []
        new_ids: list[str] = []
        token, requests_made, reached_seen = None, 0, False
        for _ in range(self.max_pages):
            with x_errors("dm fetch"):
                response: Json = self.client.get_direct_message_events(
                    dm_event_fields=DM_EVENT_FIELDS,
                    event_types="MessageCreate",
                    expansions=["sender_id"],
                    user_fields=USER_FIELDS,
                    max_results=self.page_size,
                    pagination_token=token,
                    user_auth=True,
                )
            requests_made += 1
            users, _ = _index(response)
            for event in response.get("data") or []:
                if not isinstance(event, dict):
                    skipped.append(f"dms: event is not an object: {event!r:.80}")
                    continue
                event_id = str(event.get("id"))
                if event_id in seen:
                    reached_seen = True
                    continue
                seen.add(event_id)
                new_ids.append(event_id)
                try:
                    posts.append(self.tweets.dm(event, users=users))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    skipped.append(f"dms {event_id}: {exc}")
            token = (response.get("meta") or {}).get("next_token")
            if reached_seen or not token:
                break
        # Oldest first at the end: the store keeps the newest tail when it trims seen ids.
        return FetchResult(
            posts=posts,
            next_cursor=cursor,
            seen_ids=[*seen_ids, *reversed(new_ids)],
            requests_made=requests_made,
            skipped=skipped,
        )


class XSender:
    """Sends replies on X: a reply tweet for public posts, a DM for direct messages."""

    network = NETWORK

    def __init__(self, client: tweepy.Client) -> None:
        self.client = client

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
