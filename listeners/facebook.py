"""Facebook (Graph API through facebook-sdk): the client factory, feed and Messenger listeners, the sender."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import facebook
import requests

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
    same_reply_text,
)

NETWORK = "facebook"
POST_FIELDS = "id,message,story,created_time,updated_time,from,permalink_url"
COMMENT_FIELDS = "id,message,created_time,from,parent,permalink_url"
CONVERSATION_FIELDS = "id,link,updated_time,message_count,unread_count"
MESSAGE_FIELDS = "id,message,created_time,from,to"
AUTH_CODES = {102, 190}
RATE_LIMIT_CODES = {4, 17, 32, 613}
# Graph's rate-limit errors carry no reset time and its usage windows roll over an hour: wait a while.
RATE_LIMIT_RETRY_AFTER = 300.0
# Errors a retry cannot fix on a send: permission/window (10, 200), bad parameter (100), user gone (551).
SEND_PERMANENT_CODES = {10, 100, 200, 551}

Json = dict[str, Any]


class _GraphAPI(facebook.GraphAPI):
    """facebook-sdk's client plus ``appsecret_proof`` on every call when an app secret is configured."""

    def __init__(self, *, app_secret: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_secret = app_secret

    def request(
        self,
        path: str,
        args: Json | None = None,
        post_args: Json | None = None,
        files: Any = None,
        method: str | None = None,
    ) -> Any:
        """Send one Graph request, signed with the app secret proof when there is a secret."""
        if self.app_secret and self.access_token:
            proof = hmac.new(self.app_secret.encode(), self.access_token.encode(), hashlib.sha256).hexdigest()
            # facebook-sdk puts the token in post_args when there are any, else in the query: follow it.
            if post_args:
                post_args["appsecret_proof"] = proof
            else:
                args = {**(args or {}), "appsecret_proof": proof}
        return super().request(path, args=args, post_args=post_args, files=files, method=method)


def make_graph(settings: Settings, session: requests.Session) -> Any:
    """Build the one facebook-sdk client for the page from settings, talking through ``session``."""
    token = settings.facebook_page_token.get_secret_value() if settings.facebook_page_token else None
    secret = settings.facebook_app_secret.get_secret_value() if settings.facebook_app_secret else None
    graph = _GraphAPI(access_token=token, session=session, app_secret=secret)
    # facebook-sdk 3.1.0 only accepts versions up to 3.1 in its constructor; set the real one afterwards.
    graph.version = settings.facebook_graph_version
    return graph


@contextmanager
def graph_errors(action: str, *, sending: bool = False) -> Iterator[None]:
    """Translate facebook-sdk/requests errors raised inside the block into Escucha's listener errors."""
    try:
        yield
    except facebook.GraphAPIError as exc:
        code = exc.code if isinstance(exc.code, int) else None
        if code in AUTH_CODES:
            raise AuthFailed(f"Facebook {action}: token refused ({exc.message})") from exc
        if code in RATE_LIMIT_CODES:
            raise RateLimited(f"Facebook {action}: rate limited", retry_after=RATE_LIMIT_RETRY_AFTER) from exc
        if sending and code in SEND_PERMANENT_CODES:
            raise PermanentFailure(f"Facebook {action}: refused ({exc.message})") from exc
        raise TemporaryFailure(f"Facebook {action}: {exc.message}") from exc
    except (requests.RequestException, ValueError, KeyError) as exc:  # timeouts, bad JSON, no content-type
        raise TemporaryFailure(f"Facebook {action}: {type(exc).__name__}: {exc}") from exc


def parse_graph_time(value: Any) -> datetime:
    """Parse Graph's ``2021-07-04T19:50:58+0000`` into an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"created_time missing or not a string: {value!r}")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def _author(who: Any) -> IncomingAuthor | None:
    if not isinstance(who, dict) or not who.get("id"):
        return None
    return IncomingAuthor(network=NETWORK, external_id=str(who["id"]), display_name=str(who.get("name") or ""))


def ids_from_permalink(permalink: Any) -> tuple[str, str | None] | None:
    """Comment id (and parent comment id for replies) from a comment's ``permalink_url``.

    Graph names a comment ``{post number}_{comment number}``; the permalink carries both numbers, which
    recovers ids for payloads fetched without ``id`` (as in some recorded responses).
    """
    if not isinstance(permalink, str):
        return None
    parts = urlsplit(permalink)
    segments = [s for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)
    if "posts" not in segments or "comment_id" not in query:
        return None
    post_number = segments[segments.index("posts") + 1]
    comment = query["comment_id"][0]
    reply = query.get("reply_comment_id", [None])[0]
    if reply:
        return f"{post_number}_{reply}", f"{post_number}_{comment}"
    return f"{post_number}_{comment}", None


class GraphItems:
    """Turns Graph payloads into ``IncomingPost``s for one page."""

    def __init__(self, page_id: str) -> None:
        self.page_id = page_id

    def _is_page(self, who: Any) -> bool:
        return isinstance(who, dict) and str(who.get("id")) == self.page_id

    def post(self, item: Json) -> IncomingPost:
        """Normalise a feed post (the page's own or a visitor's); raise ``ValueError`` when malformed."""
        post_id = item.get("id")
        if not isinstance(post_id, str) or not post_id:
            raise ValueError(f"post without an id: {item.get('created_time')!r}")
        created = parse_graph_time(item.get("created_time"))
        who = item.get("from")
        by_page = self._is_page(who) if who else post_id.startswith(f"{self.page_id}_")
        return IncomingPost(
            network=NETWORK,
            external_id=post_id,
            kind="page_post" if by_page else "visitor_post",
            source="feed",
            text=str(item.get("message") or item.get("story") or ""),
            created_at=created,
            author=_author(who),
            conversation_id=post_id,
            url=item.get("permalink_url") or f"https://www.facebook.com/{post_id}",
            raw=item,
        )

    def comment(self, item: Json, *, post_id: str) -> IncomingPost:
        """Normalise a comment or a reply on ``post_id``; raise ``ValueError`` when malformed."""
        derived = ids_from_permalink(item.get("permalink_url"))
        comment_id = item.get("id") or (derived[0] if derived else None)
        if not isinstance(comment_id, str) or not comment_id:
            raise ValueError(f"comment on {post_id} without an id")
        if not isinstance(item.get("message"), str):
            raise ValueError(f"comment {comment_id} has no message")
        parent = item.get("parent")
        parent_id = parent.get("id") if isinstance(parent, dict) else (derived[1] if derived else None)
        return IncomingPost(
            network=NETWORK,
            external_id=comment_id,
            kind="own" if self._is_page(item.get("from")) else "comment",
            source="feed",
            text=item["message"],
            created_at=parse_graph_time(item.get("created_time")),
            author=_author(item.get("from")),
            conversation_id=post_id,
            in_reply_to_external_id=parent_id or post_id,
            url=item.get("permalink_url") or f"https://www.facebook.com/{comment_id}",
            raw=item,
        )

    def message(self, item: Json, *, conversation: Json) -> IncomingPost:
        """Normalise a Messenger message; raise ``ValueError`` when malformed."""
        message_id = item.get("id")
        if not isinstance(message_id, str) or not message_id:
            raise ValueError(f"message in {conversation.get('id')} without an id")
        link = conversation.get("link")
        return IncomingPost(
            network=NETWORK,
            external_id=message_id,
            kind="own" if self._is_page(item.get("from")) else "dm",
            source="messages",
            text=str(item.get("message") or ""),
            created_at=parse_graph_time(item.get("created_time")),
            author=_author(item.get("from")),
            is_public=False,
            conversation_id=str(conversation.get("id")),
            url=f"https://www.facebook.com{link}" if isinstance(link, str) and link.startswith("/") else None,
            raw=item,
        )


def _after(response: Json) -> str | None:
    paging = response.get("paging") or {}
    if not paging.get("next"):
        return None
    after = (paging.get("cursors") or {}).get("after")
    return str(after) if after else None


def _ts(value: Any) -> int | None:
    try:
        return int(parse_graph_time(value).timestamp())
    except ValueError:
        return None


class _GraphListener:
    network = NETWORK
    source = ""

    def __init__(self, graph: Any, *, page_id: str, page_size: int = 25, max_pages: int = 3) -> None:
        self.graph = graph
        self.page_id = page_id
        self.items = GraphItems(page_id)
        self.page_size = page_size
        self.max_pages = max_pages
        self.requests_made = 0

    def verify(self) -> None:
        """Check the page token with ``GET /me`` and that it belongs to the configured page."""
        with graph_errors("verify"):
            me = self.graph.get_object("me", fields="id,name")
        if str(me.get("id")) != self.page_id:
            raise AuthFailed(f"Facebook token belongs to {me.get('id')}, not page {self.page_id}")

    def _get(self, node: str, edge: str, **args: Any) -> Json:
        with graph_errors(f"{self.source} fetch"):
            self.requests_made += 1
            result: Json = self.graph.get_connections(node, edge, **{k: v for k, v in args.items() if v is not None})
        return result

    def _pages(self, node: str, edge: str, **args: Any) -> Iterator[list[Json]]:
        after = None
        for _ in range(self.max_pages):
            response = self._get(node, edge, limit=self.page_size, after=after, **args)
            yield [i for i in response.get("data") or [] if isinstance(i, dict)]
            after = _after(response)
            if after is None:
                return


class FacebookFeedListener(_GraphListener):
    """Posts on the page (its own and visitors') and the comments on its recent posts.

    The cursor is the newest ``created_time`` seen (unix seconds), passed as ``since`` to the comments
    edge. Comments on older posts are found through the post's ``updated_time``, which Graph bumps on
    every new comment, so only recent posts (the first ``max_pages`` feed pages) are watched.
    """

    source = "feed"

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch new posts and comments since ``cursor``."""
        self.requests_made = 0
        since = int(cursor) if cursor and cursor.isdigit() else None
        posts: list[IncomingPost] = []
        skipped: list[str] = []
        watched: list[str] = []
        for page in self._pages(self.page_id, "feed", fields=POST_FIELDS):
            for item in page:
                created, updated = _ts(item.get("created_time")), _ts(item.get("updated_time"))
                if since is None or (created is not None and created >= since):
                    try:
                        posts.append(self.items.post(item))
                    except ValueError as exc:
                        skipped.append(f"feed: {exc}")
                        continue
                latest = max(filter(None, (created, updated)), default=None)
                if isinstance(item.get("id"), str) and (since is None or (latest is not None and latest >= since)):
                    watched.append(item["id"])
            oldest = _ts(page[-1].get("created_time")) if page else None
            # The first run backfills one page; later runs page on while posts are still new.
            if since is None or oldest is None or oldest < since:
                break
        for post_id in dict.fromkeys(watched):
            for page in self._pages(
                post_id,
                "comments",
                fields=COMMENT_FIELDS,
                filter="stream",
                order="reverse_chronological",
                since=since,
            ):
                for item in page:
                    try:
                        posts.append(self.items.comment(item, post_id=post_id))
                    except ValueError as exc:
                        skipped.append(f"comments: {exc}")
        newest = max((int(p.created_at.timestamp()) for p in posts), default=None)
        next_cursor = str(max(newest, since or 0)) if newest is not None else cursor
        return FetchResult(posts=posts, next_cursor=next_cursor, requests_made=self.requests_made, skipped=skipped)


class FacebookMessagesListener(_GraphListener):
    """Messenger conversations with the page; message ids already seen are skipped."""

    source = "messages"

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch new messages in conversations updated since ``cursor`` (unix seconds)."""
        self.requests_made = 0
        since = int(cursor) if cursor and cursor.isdigit() else None
        seen = set(seen_ids)
        posts: list[IncomingPost] = []
        skipped: list[str] = []
        new_ids: list[str] = []
        newest = since
        changed: list[Json] = []
        for page in self._pages(self.page_id, "conversations", platform="messenger", fields=CONVERSATION_FIELDS):
            for conv in page:
                updated = _ts(conv.get("updated_time"))
                if since is None or (updated is not None and updated >= since):
                    changed.append(conv)
                    newest = max(newest or 0, updated or 0)
            last = _ts(page[-1].get("updated_time")) if page else None
            if since is None or last is None or last < since:
                break
        for conv in changed:
            if not isinstance(conv.get("id"), str):
                skipped.append("messages: conversation without an id")
                continue
            for page in self._pages(conv["id"], "messages", fields=MESSAGE_FIELDS):
                reached_seen = False
                for item in page:
                    message_id = str(item.get("id"))
                    if message_id in seen:
                        reached_seen = True
                        continue
                    seen.add(message_id)
                    new_ids.append(message_id)
                    try:
                        posts.append(self.items.message(item, conversation=conv))
                    except ValueError as exc:
                        skipped.append(f"messages: {exc}")
                if reached_seen:
                    break
        return FetchResult(
            posts=posts,
            next_cursor=str(newest) if newest is not None else cursor,
            seen_ids=[*seen_ids, *reversed(new_ids)],
            requests_made=self.requests_made,
            skipped=skipped,
        )


class FacebookSender:
    """Sends replies on Facebook: a comment for public posts, the Send API for Messenger."""

    network = NETWORK

    def __init__(self, graph: Any, *, page_id: str | None = None) -> None:
        self.graph = graph
        self.page_id = page_id

    def _page_id(self) -> str:
        if self.page_id is None:
            with graph_errors("verify"):
                self.page_id = str(self.graph.get_object("me", fields="id")["id"])
        return self.page_id

    def find_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply | None:
        """Look for the page's reply with ``text`` under comment ``external_id`` (or in the Messenger thread)."""
        del idempotency_key
        page = self._page_id()
        if kind == "dm":
            if not author_external_id:
                return None
            with graph_errors("look up message"):
                convs = self.graph.get_connections(page, "conversations", platform="messenger",
                                                   user_id=author_external_id, fields="id")  # fmt: skip
                for conv in convs.get("data") or []:
                    messages = self.graph.get_connections(conv["id"], "messages", fields="id,message,from", limit=50)
                    for m in messages.get("data") or []:
                        if str((m.get("from") or {}).get("id")) == page and same_reply_text(
                            text, str(m.get("message", ""))
                        ):
                            return SentReply(external_id=str(m["id"]))
            return None
        with graph_errors("look up comment"):
            replies = self.graph.get_connections(external_id, "comments", fields="id,message,from", limit=100,
                                                 order="reverse_chronological")  # fmt: skip
        for c in replies.get("data") or []:
            if str((c.get("from") or {}).get("id")) == page and same_reply_text(text, str(c.get("message", ""))):
                comment_id = str(c["id"])
                return SentReply(external_id=comment_id, url=f"https://www.facebook.com/{comment_id}")
        return None

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        """Comment on ``external_id``, or message ``author_external_id`` when ``kind`` is dm."""
        del idempotency_key  # Graph has no idempotency key; the outbox reconciles before any retry
        if kind == "dm":
            if not author_external_id:
                raise PermanentFailure("Messenger reply needs the recipient's page-scoped id")
            with graph_errors("send message", sending=True):
                result = self.graph.request(
                    f"{self.graph.version}/me/messages",
                    post_args={
                        # The Send API wants these two fields as JSON-encoded strings.
                        "recipient": json.dumps({"id": author_external_id}),
                        "message": json.dumps({"text": text}),
                        "messaging_type": "RESPONSE",
                    },
                )
            return SentReply(external_id=str(result.get("message_id", "")))
        with graph_errors("send comment", sending=True):
            result = self.graph.put_comment(external_id, text)
        comment_id = str(result.get("id", ""))
        return SentReply(external_id=comment_id, url=f"https://www.facebook.com/{comment_id}")
