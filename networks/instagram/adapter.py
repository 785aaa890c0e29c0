"""Instagram (Graph API through facebook-sdk): the client factory, comments/mentions/DM listeners, the sender.

The account is an Instagram professional account linked to a Facebook Page; the Page's token reaches it
through ``graph.facebook.com`` (the Instagram API with Facebook Login). Objects: media ``/{ig-user-id}/media``,
their comments ``/{media-id}/comments`` (top level, newest first) with each thread's ``replies``, photo tags
``/{ig-user-id}/tags``, the ``mentioned_media`` / ``mentioned_comment`` lookups, and the account's Instagram
conversations ``/{page-id}/conversations?platform=instagram``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import facebook
import requests

from ground.redact import reveal
from models.watch import Watch
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
from networks.graph import RATE_LIMIT_CODES as GRAPH_RATE_LIMIT_CODES
from networks.graph import graph_client, graph_code, translated_errors
from networks.http import GraphUsage, endpoint_limits
from networks.instagram.settings import InstagramSettings

NETWORK = "instagram"
MEDIA_FIELDS = "id,caption,timestamp,comments_count,permalink,media_type,username"
COMMENT_FIELDS = "id,text,timestamp,username,from,parent_id"
THREAD_FIELDS = f"{COMMENT_FIELDS},replies{{{COMMENT_FIELDS}}}"
CONVERSATION_FIELDS = "id,updated_time"
MESSAGE_FIELDS = "id,message,created_time,from,to"
# Graph's limits plus 80002, Instagram's business use case limit.
RATE_LIMIT_CODES = GRAPH_RATE_LIMIT_CODES | {80002}
# Instagram's own words for the refusals a person must understand (error_subcode → why).
SEND_REASONS = {
    2534022: "outside the 24-hour messaging window",
    2534023: "this comment was already answered privately (Instagram allows one private reply)",
    2534025: "the comment is older than 7 days, too old for a private reply",
}
MULTI_ID_LIMIT = 50
LOOKUP_PAGE_SIZE = 100
SEEN_IDS_KEPT = 5000

Json = dict[str, Any]


def make_graph(ig: InstagramSettings, session: requests.Session) -> Any:
    """The one facebook-sdk client for the account, talking through ``session``."""
    return graph_client(
        token=reveal(ig.token), app_secret=reveal(ig.app_secret), version=ig.graph_version, session=session
    )


def graph_errors(action: str, *, sending: bool = False) -> AbstractContextManager[None]:
    """Translate facebook-sdk/requests errors raised inside the block into Escucha's listener errors."""
    return translated_errors(
        "Instagram", action, sending=sending, rate_limit_codes=RATE_LIMIT_CODES, send_reasons=SEND_REASONS
    )


def parse_ig_time(value: Any) -> datetime:
    """Parse Graph's ``2021-08-13T08:25:28+0000`` into an aware UTC datetime (``ValueError`` otherwise)."""
    if not isinstance(value, str):
        raise ValueError(f"timestamp missing or not a string: {value!r:.80}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {value[:40]!r}") from exc


# Instagram object ids are digits; conversation and message ids are URL-safe base64 tokens ("aWdf…").
_IG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")


def is_ig_id(value: str) -> bool:
    """Tell whether ``value`` can stand in a Graph path as an object id (no path or query characters)."""
    return bool(_IG_ID.fullmatch(value))


def _id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _object_id(value: Any, what: str) -> str:
    found = _id(value)
    if found is None or not is_ig_id(found):
        raise ValueError(f"{what} without a valid id: {str(value)[:40]!r}")
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    try:
        return parse_ig_time(value)
    except ValueError:
        return None


def _ts(value: Any) -> int | None:
    at = _time(value)
    return int(at.timestamp()) if at is not None else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def mention_id(media_id: str, comment_id: str | None = None) -> str:
    """A mention's external id: the media's id, or ``{media}_{comment}`` for an @mention in a comment.

    A reply to a mention names both (``POST /{ig-user-id}/mentions?media_id=…&comment_id=…``); keeping them
    in the id lets the sender answer without another lookup.
    """
    return f"{media_id}_{comment_id}" if comment_id else media_id


def split_mention(external_id: str) -> tuple[str, str | None]:
    """The media id and the comment id (if any) of a mention's external id."""
    media, _, comment = external_id.partition("_")
    return media, comment or None


class IgItems:
    """Turns Instagram payloads into ``IncomingPost``s for one account."""

    def __init__(self, user_id: str, username: str = "") -> None:
        self.user_id = user_id
        self.username = username.lower()

    def _is_brand(self, item: Json) -> bool:
        who = _dict(item.get("from"))
        if who.get("id") is not None:
            return str(who.get("id")) == self.user_id
        return bool(self.username) and str(item.get("username", "")).lower() == self.username

    def _author(self, item: Json) -> IncomingAuthor | None:
        who = _dict(item.get("from"))
        author_id = _id(who.get("id"))
        username = _text(who.get("username")) or _text(item.get("username")) or ""
        if author_id is None and not username:
            return None
        # Without an id (as in some recordings) the username stands in: it is unique on Instagram.
        return IncomingAuthor(network=NETWORK, external_id=author_id or f"@{username}"[:64], username=username)

    def media(self, item: Json) -> IncomingPost:
        """Normalise one of the account's own media; raise ``ValueError`` when malformed."""
        media_id = _object_id(item.get("id"), f"media at {item.get('timestamp')!r:.40}")
        return IncomingPost(
            network=NETWORK,
            external_id=media_id,
            kind="page_post",
            source="comments",
            text=_text(item.get("caption")) or "",
            created_at=parse_ig_time(item.get("timestamp")),
            author=IncomingAuthor(network=NETWORK, external_id=self.user_id, username=self.username),
            conversation_id=media_id,
            url=_text(item.get("permalink")),
            raw=item,
        )

    def comment(self, item: Json, *, media_id: str, parent_id: str | None = None) -> IncomingPost:
        """Normalise a comment or a reply on ``media_id``; raise ``ValueError`` when malformed."""
        comment_id = _object_id(item.get("id"), f"comment on {media_id}")
        if not isinstance(item.get("text"), str):
            raise ValueError(f"comment {comment_id} has no text")
        parent = _id(item.get("parent_id")) or parent_id
        if parent is not None and not is_ig_id(parent):
            raise ValueError(f"comment {comment_id} has an invalid parent id: {parent[:40]!r}")
        return IncomingPost(
            network=NETWORK,
            external_id=comment_id,
            kind="own" if self._is_brand(item) else "comment",
            source="comments",
            text=item["text"],
            created_at=parse_ig_time(item.get("timestamp")),
            author=self._author(item),
            conversation_id=media_id,
            in_reply_to_external_id=parent or media_id,
            raw=item,
        )

    def mention(self, item: Json, *, media_id: str | None = None) -> IncomingPost:
        """Normalise a media that tags or @mentions the account, or (with ``media_id``) a comment that does."""
        own_id = _object_id(item.get("id"), "mention")
        if media_id is not None and not is_ig_id(media_id):
            raise ValueError(f"mention in a comment on an invalid media id: {media_id[:40]!r}")
        text = _text(item.get("text") if media_id else item.get("caption"))
        return IncomingPost(
            network=NETWORK,
            external_id=mention_id(media_id, own_id) if media_id else own_id,
            kind="mention",
            source="mentions",
            text=text or "",
            created_at=parse_ig_time(item.get("timestamp")),
            author=self._author(item),
            conversation_id=media_id or own_id,
            url=_text(item.get("permalink")),
            raw=item,
        )

    def message(self, item: Json, *, conversation_id: str | None) -> IncomingPost:
        """Normalise an Instagram DM; raise ``ValueError`` when malformed."""
        message_id = _object_id(item.get("id"), f"message in {str(conversation_id)[:40]!r}")
        return IncomingPost(
            network=NETWORK,
            external_id=message_id,
            kind="own" if self._is_brand(item) else "dm",
            source="messages",
            text=_text(item.get("message")) or "",
            created_at=parse_ig_time(item.get("created_time")),
            author=self._author(item),
            is_public=False,
            conversation_id=conversation_id,
            raw=item,
        )


def _after(response: Any) -> str | None:
    paging = _dict(response).get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    after = _id(_dict(paging.get("cursors")).get("after"))
    return after if after is not None and len(after) <= 1024 else None


def _data(response: Any) -> list[Json]:
    data = _dict(response).get("data")
    return [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []


class _IgListener:
    network = NETWORK
    source = ""
    endpoints: tuple[str, ...] = ()

    def __init__(
        self, graph: Any, *, user_id: str, username: str = "", page_id: str = "", page_size: int = 25,
        max_pages: int = 3,
    ) -> None:  # fmt: skip
        self.graph = graph
        self.user_id = user_id
        self.page_id = page_id
        self.items = IgItems(user_id, username)
        self.page_size = page_size
        self.max_pages = max_pages
        self.requests_made = 0

    def verify(self) -> None:
        """Check the token can read the configured account (``GET /{ig-user-id}?fields=id,username``)."""
        with graph_errors("verify"):
            me = self.graph.get_object(self.user_id, fields="id,username")
        if str(_dict(me).get("id")) != self.user_id:
            raise AuthFailed(f"Instagram token does not reach account {self.user_id}")

    def quota(self) -> dict[str, RateLimit]:
        """Graph's last usage headers on this source's edges, by edge."""
        session = getattr(self.graph, "session", None)
        return {path: q for fragment in self.endpoints for path, q in endpoint_limits(session, fragment).items()}

    def _check_usage(self) -> None:
        """Stop before a request while the business use case reports 95 % or more used."""
        now = time.time()
        for path, limit in self.quota().items():
            if isinstance(limit, GraphUsage) and limit.exhausted:
                raise RateLimited(
                    f"Instagram {self.source}: {limit.header} at {limit.used}% on {path}",
                    retry_after=max(1.0, limit.reset - now),
                )

    def _get(self, node: str, edge: str, **args: Any) -> Json:
        self._check_usage()
        with graph_errors(f"{self.source} fetch"):
            if not is_ig_id(node):
                raise ValueError(f"not an Instagram object id: {node[:40]!r}")
            self.requests_made += 1
            result: Json = self.graph.get_connections(node, edge, **{k: v for k, v in args.items() if v is not None})
        return result


class InstagramCommentsListener(_IgListener):
    """Comments and replies on the account's media, read per media while it is active.

    A run walks ``/{ig-user-id}/media`` newest first down to the cursor (the newest media time already seen),
    storing new media and watching every media it meets inside ``watch_days``. Then it asks, 50 media a
    request (``GET /?ids=…&fields=comments_count,timestamp``), which watched media have a comment count other
    than the one last read, and reads those media's threads (top-level comments newest first, each with its
    ``replies``), taking what is at or after the media's own newest-comment time. So a media under any number
    of newer ones is still read, a new reply to an old comment is found, and untouched media cost nothing.
    Each page is saved with the run's resume state; a watched media read in this run is not read again when
    a crashed run resumes. A media with more than ``page_size`` × ``max_pages`` top-level comments has only
    its newest threads read when its count changes.
    """

    source = "comments"
    endpoints = ("/media", "/comments", "/?ids")

    def __init__(
        self, graph: Any, *, watch_days: int = 30, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(graph, **kwargs)
        self.watch_days = watch_days
        self.clock = clock
        self.watched: dict[str, Watch] = {}

    def set_watched(self, watched: list[Watch]) -> None:
        """Start from the stored watched media."""
        self.watched = {w.external_id: w for w in watched}

    def _floor(self) -> datetime:
        return self.clock() - timedelta(days=self.watch_days)

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield each media page, then each batch of watched media's comments, with the run's resume state."""
        run: Json = dict(paging) if paging.get("phase") in ("media", "comments") else {}
        if not run:
            run = {"phase": "media", "since": _int(cursor), "newest": None, "after": None, "run": uuid.uuid4().hex}
        pages = 0
        while run["phase"] == "media":
            self.requests_made = 0
            posts: list[IncomingPost] = []
            skipped: list[str] = []
            watch: list[Watch] = []
            response = self._get(self.user_id, "media", fields=MEDIA_FIELDS, limit=self.page_size, after=run["after"])
            data = _data(response)
            done = self._media_page(data, run, posts, skipped, watch)
            run["after"] = _after(response)
            if done or run["after"] is None:
                run.update(phase="comments", after=None)
            pages += 1
            yield FetchResult(posts, next_cursor=None, requests_made=self.requests_made, skipped=skipped,
                              paging=dict(run), items_read=len(data), watch=watch)  # fmt: skip
            if run["phase"] == "media" and pages >= self.max_pages:
                return
        yield from self._comments_pass(cursor, run)

    def _media_page(
        self, data: list[Json], run: Json, posts: list[IncomingPost], skipped: list[str], watch: list[Watch]
    ) -> bool:
        since, first = run.get("since"), run.get("newest") is None
        floor = self._floor()
        for item in data:
            created = _ts(item.get("timestamp"))
            if first and created is not None:
                run["newest"] = max(created, run.get("newest") or 0)
            new = since is None or (created is not None and created >= since)
            if not new:
                return True
            try:
                post = self.items.media(item)
            except ValueError as exc:
                skipped.append(f"media: {exc}")
                continue
            posts.append(post)
            if post.created_at >= floor and post.external_id not in self.watched:
                entry = Watch(post.external_id, post.created_at, cursor=None)
                self.watched[entry.external_id] = entry
                watch.append(entry)
        # The first run (no cursor) reads one page of media; later runs page down to the cursor.
        return since is None

    def _comments_pass(self, cursor: str | None, run: Json) -> Iterator[FetchResult]:
        while True:
            due = sorted((w for w in self.watched.values() if w.read_in_run != run["run"]), key=lambda w: w.external_id)
            if not due:
                break
            self.requests_made = 0
            posts: list[IncomingPost] = []
            skipped: list[str] = []
            watch: list[Watch] = []
            unwatch: list[str] = []
            items = self._read_batch(due[:MULTI_ID_LIMIT], run, posts, skipped, watch, unwatch)
            for media_id in unwatch:
                self.watched.pop(media_id, None)
            for entry in watch:
                self.watched[entry.external_id] = entry
            if not [w for w in self.watched.values() if w.read_in_run != run["run"]]:
                yield self._finish(cursor, run, posts, skipped, watch, unwatch, items)
                return
            yield FetchResult(posts, next_cursor=None, requests_made=self.requests_made, skipped=skipped,
                              paging=dict(run), items_read=items, watch=watch, unwatch=unwatch)  # fmt: skip
        self.requests_made = 0
        yield self._finish(cursor, run, [], [], [], [], 0)

    def _finish(
        self, cursor: str | None, run: Json, posts: list[IncomingPost], skipped: list[str], watch: list[Watch],
        unwatch: list[str], items: int,
    ) -> FetchResult:  # fmt: skip
        newest = run.get("newest")
        next_cursor = str(max(newest, run.get("since") or 0)) if newest is not None else cursor
        return FetchResult(posts, next_cursor=next_cursor, requests_made=self.requests_made, skipped=skipped,
                           paging={}, items_read=items, watch=watch, unwatch=unwatch)  # fmt: skip

    def _read_batch(
        self, batch: list[Watch], run: Json, posts: list[IncomingPost], skipped: list[str], watch: list[Watch],
        unwatch: list[str],
    ) -> int:  # fmt: skip
        """Ask the batch's comment counts in one request; read the threads of the media whose count moved."""
        self._check_usage()
        try:
            with graph_errors(f"{self.source} fetch"):
                ids = [w.external_id for w in batch if is_ig_id(w.external_id)]
                self.requests_made += 1
                counts = _dict(self.graph.get_objects(ids, fields="comments_count,timestamp")) if ids else {}
        except TemporaryFailure as exc:
            cause = exc.__cause__
            if not (isinstance(cause, facebook.GraphAPIError) and cause.code == 100):
                raise
            skipped.append(f"comments: a batch of {len(batch)} media refused, each asked on its own ({exc})")
            counts = {}
        items = 0
        for entry in batch:
            found = counts.get(entry.external_id)
            if not isinstance(found, dict):
                found = self._one_count(entry, skipped, unwatch)
                if found is None:
                    continue
            items += self._read_media(entry, found, run, posts, skipped, watch, unwatch)
        return items

    def _one_count(self, entry: Watch, skipped: list[str], unwatch: list[str]) -> Json | None:
        try:
            with graph_errors(f"{self.source} fetch"):
                self.requests_made += 1
                return _dict(self.graph.get_object(entry.external_id, fields="comments_count,timestamp"))
        except TemporaryFailure as exc:
            if graph_code(exc)[1] == 33:
                skipped.append(f"comments: media {entry.external_id} is gone")
                unwatch.append(entry.external_id)
                return None
            raise

    def _read_media(
        self, entry: Watch, found: Json, run: Json, posts: list[IncomingPost], skipped: list[str],
        watch: list[Watch], unwatch: list[str],
    ) -> int:  # fmt: skip
        """Read one media's threads when its comment count moved; keep its watch entry up to date."""
        media_id = entry.external_id
        seen_count, newest = _watch_cursor(entry.cursor)
        count = _int(found.get("comments_count"))
        activity = [entry.last_activity]
        items = 0
        # Unknown counts are read; a media nobody commented on (or whose count is what was read) costs nothing.
        if count is None or (count > 0 and count != seen_count):
            after: str | None = None
            for _ in range(self.max_pages):
                page = self._get(media_id, "comments", fields=THREAD_FIELDS, limit=self.page_size, after=after)
                for thread in _data(page):
                    items += 1
                    replies = _data(thread.get("replies"))
                    items += len(replies)
                    top = _id(thread.get("id"))
                    for item, parent in ((thread, None), *((r, top) for r in replies)):
                        created = _ts(item.get("timestamp"))
                        if newest is not None and created is not None and created < newest:
                            continue  # read by an earlier run
                        try:
                            posts.append(self.items.comment(item, media_id=media_id, parent_id=parent))
                        except ValueError as exc:
                            skipped.append(f"comments: {exc}")
                            continue
                        if created is not None:
                            activity.append(datetime.fromtimestamp(created, UTC))
                after = _after(page)
                if after is None:
                    break
            newest = max([newest or 0, *(int(a.timestamp()) for a in activity[1:])]) or newest
        last_activity = max(activity)
        if last_activity < self._floor():
            unwatch.append(media_id)
            return items
        cursor = f"{count if count is not None else ''}:{newest if newest is not None else ''}"
        watch.append(Watch(media_id, last_activity, cursor=cursor, read_in_run=run["run"]))
        return items

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch new media, comments and replies since ``cursor`` in one result."""
        return merge_pages(self.fetch_pages(cursor, seen_ids, {}), cursor)


def _watch_cursor(value: str | None) -> tuple[int | None, int | None]:
    """A watched media's saved ``count:newest`` (comment count last read, newest comment time taken)."""
    count, _, newest = (value or "").partition(":")
    return _int(count), _int(newest)


class InstagramMentionsListener(_IgListener):
    """Media that tag the account (``/{ig-user-id}/tags``), newest first down to the cursor (a time).

    @mentions in other people's captions and comments have no listing: Instagram pushes them (the
    ``mentions`` webhook field) and they are read with ``mentioned_media`` / ``mentioned_comment``.
    """

    source = "mentions"
    endpoints = ("/tags",)

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch tagged media newer than ``cursor``; an unfinished walk keeps the cursor for the next poll."""
        since = _int(cursor)
        self.requests_made = 0
        posts: list[IncomingPost] = []
        skipped: list[str] = []
        newest: int | None = None
        after: str | None = None
        read = 0
        for _ in range(self.max_pages):
            response = self._get(self.user_id, "tags", fields=MEDIA_FIELDS, limit=self.page_size, after=after)
            data = _data(response)
            read += len(data)
            reached = False
            for item in data:
                created = _ts(item.get("timestamp"))
                if newest is None and created is not None:
                    newest = created
                if since is not None and created is not None and created < since:
                    reached = True
                    break
                try:
                    posts.append(self.items.mention(item))
                except ValueError as exc:
                    skipped.append(f"mentions: {exc}")
            after = _after(response)
            if reached or after is None or since is None:
                next_cursor = str(max(newest, since or 0)) if newest is not None else cursor
                return FetchResult(posts, next_cursor=next_cursor, requests_made=self.requests_made,
                                   skipped=skipped, items_read=read)  # fmt: skip
        skipped.append(f"stopped after {self.max_pages} pages; the cursor stays so the rest is fetched later")
        return FetchResult(posts, next_cursor=cursor, requests_made=self.requests_made, skipped=skipped,
                           items_read=read)  # fmt: skip


def lookup_mention(graph: Any, *, user_id: str, username: str, media_id: str, comment_id: str | None) -> IncomingPost:
    """Read one @mention the ``mentions`` webhook announced (``mentioned_comment`` or ``mentioned_media``)."""
    items = IgItems(user_id, username)
    if not is_ig_id(media_id) or (comment_id is not None and not is_ig_id(comment_id)):
        raise ValueError("a mention names invalid ids")
    with graph_errors("mention lookup"):
        if comment_id:
            spec = f"mentioned_comment.comment_id({comment_id}){{id,text,timestamp,username,from}}"
            body = _dict(graph.get_object(user_id, fields=spec)).get("mentioned_comment")
            return items.mention(_dict(body), media_id=media_id)
        spec = f"mentioned_media.media_id({media_id}){{id,caption,timestamp,username,permalink,media_type}}"
        return items.mention(_dict(_dict(graph.get_object(user_id, fields=spec)).get("mentioned_media")))


class InstagramMessagesListener(_IgListener):
    """The account's Instagram conversations; message ids already seen are skipped.

    A poll lists the conversations updated since the cursor (newest first), then reads each one's messages
    newest first down to a message already seen or older than the cursor, at most ``max_pages`` pages each.
    The cursor moves to the newest ``updated_time`` once every listed conversation was read.
    """

    source = "messages"
    endpoints = ("/conversations", "/messages")

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch new DMs in conversations updated since ``cursor``, with the seen ids."""
        since = _int(cursor)
        self.requests_made = 0
        seen_list = list(seen_ids)
        seen = set(seen_list)
        posts: list[IncomingPost] = []
        skipped: list[str] = []
        convs: list[tuple[int, str]] = []
        newest: int | None = None
        after: str | None = None
        read = 0
        for _ in range(self.max_pages):
            response = self._get(self.page_id, "conversations", platform="instagram", fields=CONVERSATION_FIELDS,
                                 limit=self.page_size, after=after)  # fmt: skip
            data = _data(response)
            read += len(data)
            older = False
            for conv in data:
                updated = _ts(conv.get("updated_time"))
                if newest is None and updated is not None:
                    newest = updated
                if since is not None and (updated is None or updated < since):
                    older = True
                    break
                conv_id = _id(conv.get("id"))
                if conv_id is None or not is_ig_id(conv_id):
                    skipped.append(f"messages: conversation without a valid id: {str(conv.get('id'))[:40]!r}")
                    continue
                convs.append((updated or 0, conv_id))
            after = _after(response)
            if older or after is None or since is None:
                break
        else:
            skipped.append("conversations: stopped at the page bound; the cursor stays")
            newest = None
        for _updated, conv_id in sorted(convs):  # the longest-waiting customers first
            read += self._read_conversation(conv_id, since, seen, seen_list, posts, skipped)
        next_cursor = str(max(newest, since or 0)) if newest is not None else cursor
        return FetchResult(posts, next_cursor=next_cursor, seen_ids=seen_list[-SEEN_IDS_KEPT:],
                           requests_made=self.requests_made, skipped=skipped, items_read=read)  # fmt: skip

    def _read_conversation(
        self, conv_id: str, since: int | None, seen: set[str], seen_list: list[str], posts: list[IncomingPost],
        skipped: list[str],
    ) -> int:  # fmt: skip
        after: str | None = None
        read = 0
        new: list[str] = []
        for _ in range(self.max_pages):
            response = self._get(conv_id, "messages", fields=MESSAGE_FIELDS, limit=self.page_size, after=after)
            data = _data(response)
            read += len(data)
            stop = False
            for item in data:
                message_id = str(item.get("id"))
                created = _ts(item.get("created_time"))
                if message_id in seen or (since is not None and created is not None and created < since):
                    stop = True
                    break
                seen.add(message_id)
                new.append(message_id)
                try:
                    posts.append(self.items.message(item, conversation_id=conv_id))
                except ValueError as exc:
                    skipped.append(f"messages: {exc}")
            after = _after(response)
            if stop or after is None:
                break
        seen_list.extend(reversed(new))  # oldest first, so trimming drops the oldest
        return read


def _newest_match(pages: Iterator[list[Json]], ours: Callable[[Json], bool], not_before: datetime | None,
                  key: str) -> str | None:  # fmt: skip
    """The id of the first item, newest first, that ``ours`` accepts, stopping at items older than ``not_before``."""
    for page in pages:
        for item in page:
            if created_before(_time(item.get(key)), not_before):
                return None
            found = _id(item.get("id"))
            if found is not None and ours(item):
                return found
    return None


class InstagramSender:
    """Replies from the account: a comment in the thread, a reply to a mention, a DM, a private reply."""

    network = NETWORK

    def __init__(
        self, graph: Any, *, user_id: str, username: str = "", page_id: str = "",
        lookup_max_pages: int = LOOKUP_MAX_PAGES,
    ) -> None:  # fmt: skip
        self.graph = graph
        self.user_id = user_id
        self.username = username.lower()
        self.page_id = page_id
        self.lookup_max_pages = lookup_max_pages

    # ------------------------------------------------------------- sending
    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        """Answer a comment in its thread, a mention where it was made, or a DM in the conversation."""
        del idempotency_key  # Graph has no idempotency key; the outbox reconciles before any retry
        if kind == "dm":
            if not author_external_id or not is_ig_id(author_external_id):
                raise PermanentFailure("Instagram DM reply needs the recipient's Instagram-scoped id")
            return self._message({"id": author_external_id}, text, "send message")
        _checked(external_id)
        if kind == "mention":
            media_id, comment_id = split_mention(external_id)
            args = {"media_id": media_id, "message": text, **({"comment_id": comment_id} if comment_id else {})}
            with graph_errors("reply to mention", sending=True):
                result = self.graph.request(f"{self.graph.version}/{self.user_id}/mentions", post_args=args)
            return SentReply(external_id=str(_dict(result).get("id", "")))
        thread = self._thread_of(external_id)
        with graph_errors("send comment", sending=True):
            result = self.graph.request(f"{self.graph.version}/{thread}/replies", post_args={"message": text})
        return SentReply(external_id=str(_dict(result).get("id", "")))

    def send_private_reply(self, *, external_id: str, text: str, idempotency_key: str) -> SentReply:
        """Answer a comment in the commenter's inbox (``recipient: {comment_id}``): once, within 7 days."""
        del idempotency_key
        _checked(external_id)
        return self._message({"comment_id": external_id}, text, "send private reply")

    def _message(self, recipient: Json, text: str, action: str) -> SentReply:
        with graph_errors(action, sending=True):
            result = self.graph.request(
                f"{self.graph.version}/{self.user_id}/messages",
                # The Send API wants these two fields as JSON-encoded strings.
                post_args={"recipient": json.dumps(recipient), "message": json.dumps({"text": text})},
            )
        return SentReply(external_id=str(_dict(result).get("message_id", "")))

    def _thread_of(self, comment_id: str) -> str:
        """The top-level comment whose replies hold ours: Instagram threads are one level deep."""
        with graph_errors("look up comment"):
            target = _dict(self.graph.get_object(comment_id, fields="id,parent_id"))
        parent = _id(target.get("parent_id"))
        return parent if parent is not None and is_ig_id(parent) else comment_id

    # ------------------------------------------------------------- crash reconciliation
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
        """Look for the account's reply with ``text`` (in the thread, under the mention, or in the DMs)."""
        del idempotency_key
        if kind == "dm":
            return self._find_message(author_external_id, text, not_before)
        _checked(external_id)

        def ours(item: Json) -> bool:
            who = _dict(item.get("from"))
            by_us = str(who.get("id")) == self.user_id if who.get("id") is not None else (
                str(item.get("username", "")).lower() == self.username)  # fmt: skip
            return by_us and same_reply_text(text, str(item.get("text", "")))

        if kind == "mention":
            media_id, comment_id = split_mention(external_id)
            pages = self._mention_replies(media_id, comment_id)
        else:
            pages = self._pages(self._thread_of(external_id), "replies", "look up comment",
                                fields="id,text,timestamp,username,from", limit=LOOKUP_PAGE_SIZE)  # fmt: skip
        found = _newest_match(pages, ours, not_before, "timestamp")
        return SentReply(external_id=found) if found else None

    def find_private_reply(
        self, *, external_id: str, author_external_id: str | None, text: str, not_before: datetime | None = None
    ) -> SentReply | None:
        """Look for a private reply to comment ``external_id`` in the commenter's conversation."""
        _checked(external_id)
        return self._find_message(author_external_id, text, not_before)

    def _find_message(self, author: str | None, text: str, not_before: datetime | None) -> SentReply | None:
        if not author or not is_ig_id(author):
            return None

        def ours(item: Json) -> bool:
            return str(_dict(item.get("from")).get("id")) == self.user_id and same_reply_text(
                text, str(item.get("message", ""))
            )

        for convs in self._pages(self.page_id, "conversations", "look up message", platform="instagram",
                                 user_id=author, fields="id"):  # fmt: skip
            for conv in convs:
                conv_id = _id(conv.get("id"))
                if conv_id is None or not is_ig_id(conv_id):
                    continue
                messages = self._pages(conv_id, "messages", "look up message", fields="id,message,from,created_time",
                                       limit=LOOKUP_PAGE_SIZE)  # fmt: skip
                found = _newest_match(messages, ours, not_before, "created_time")
                if found is not None:
                    return SentReply(external_id=found)
        return None

    def _mention_replies(self, media_id: str, comment_id: str | None) -> Iterator[list[Json]]:
        """Our replies under a mention: the mentioning comment's replies, or the mentioning media's comments."""
        edge = "replies" if comment_id else "comments"
        lookup = (
            f"mentioned_comment.comment_id({comment_id})" if comment_id else f"mentioned_media.media_id({media_id})"
        )
        spec = f"{lookup}{{{edge}{{id,text,timestamp,username,from}}}}"
        with graph_errors("look up mention reply"):
            body = _dict(self.graph.get_object(self.user_id, fields=spec))
        found = _dict(body.get("mentioned_comment" if comment_id else "mentioned_media"))
        # The lookup shows the edge's first page; a thread longer than that cannot be settled from here.
        page = _dict(found.get(edge))
        yield _data(page)
        if _after(page) is not None:
            raise TemporaryFailure("Instagram look up mention reply: the mention's thread has more than one page")

    def _pages(self, node: str, edge: str, action: str, **args: Any) -> Iterator[list[Json]]:
        """Each page of ``node/edge`` following the ``after`` cursor; ``TemporaryFailure`` past the cap."""
        after: str | None = None
        for _ in range(self.lookup_max_pages):
            query = {k: v for k, v in {**args, "after": after}.items() if v is not None}
            with graph_errors(action):
                response = self.graph.get_connections(node, edge, **query)
            yield _data(response)
            after = _after(response)
            if after is None:
                return
        raise TemporaryFailure(f"Instagram {action}: not settled within {self.lookup_max_pages} pages")


def _checked(external_id: str) -> None:
    """Refuse, for good, a target id that could not stand in a Graph path (a hostile or broken row)."""
    if not is_ig_id(external_id):
        raise PermanentFailure(f"Instagram reply: not an Instagram object id: {external_id[:40]!r}")
