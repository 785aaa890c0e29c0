"""Facebook (Graph API through facebook-sdk): the client factory, feed and Messenger listeners, the sender."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from ground.redact import reveal
from ground.settings import Settings
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
from networks.facebook.settings import FacebookSettings
from networks.graph import graph_client, graph_code, translated_errors
from networks.http import GraphUsage, endpoint_limits

NETWORK = "facebook"
POST_FIELDS = "id,message,story,created_time,updated_time,from,permalink_url"
COMMENT_FIELDS = "id,message,created_time,from,parent,permalink_url"
CONVERSATION_FIELDS = "id,link,updated_time,message_count,unread_count"
MESSAGE_FIELDS = "id,message,created_time,from,to"
LOOKUP_PAGE_SIZE = 100

Json = dict[str, Any]


def make_graph(settings: Settings | FacebookSettings, session: requests.Session) -> Any:
    """Build the one facebook-sdk client for the page from settings, talking through ``session``."""
    fb = settings if isinstance(settings, FacebookSettings) else FacebookSettings.of(settings)
    return graph_client(
        token=reveal(fb.page_token), app_secret=reveal(fb.app_secret), version=fb.graph_version, session=session
    )


def graph_errors(action: str, *, sending: bool = False) -> AbstractContextManager[None]:
    """Translate facebook-sdk/requests errors raised inside the block into Escucha's listener errors."""
    return translated_errors("Facebook", action, sending=sending)


def parse_graph_time(value: Any) -> datetime:
    """Parse Graph's ``2021-07-04T19:50:58+0000`` into an aware UTC datetime (``ValueError`` when it is not one)."""
    if not isinstance(value, str):
        raise ValueError(f"created_time missing or not a string: {value!r:.80}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+1400 falls before year 1 in UTC
        raise ValueError(f"created_time out of range: {value[:40]!r}") from exc


# Graph object ids are digits joined by "_" ("123_456"), or prefixed tokens ("t_…", "m_…", legacy
# "m_mid.$…:…"). Ids go into request paths, so "/", "?", "#", "&", "%", spaces and ".." never pass.
_GRAPH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:$-]{0,199}")


def is_graph_id(value: str) -> bool:
    """Tell whether ``value`` can stand in a Graph path as an object id (no path or query characters)."""
    return bool(_GRAPH_ID.fullmatch(value)) and ".." not in value


def graph_node(value: str) -> str:
    """``value`` when it is a Graph object id, else ``ValueError``: never put it in a request path."""
    if not is_graph_id(value):
        raise ValueError(f"not a Graph object id: {value[:40]!r}")
    return value


def _id(value: Any) -> str | None:
    """An object id Graph sends as a string (a number is accepted); anything else is no id."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _object_id(value: Any, what: str) -> str:
    """A payload's own object id, checked before it is stored or used in a path; ``ValueError`` otherwise."""
    found = _id(value)
    if found is None or not is_graph_id(found):
        raise ValueError(f"{what} without a valid id: {str(value)[:40]!r}")
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _author(who: Any) -> IncomingAuthor | None:
    if not isinstance(who, dict) or (author_id := _id(who.get("id"))) is None:
        return None
    return IncomingAuthor(network=NETWORK, external_id=author_id, display_name=_text(who.get("name")) or "")


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
    if "posts" not in segments or "comment_id" not in query or segments[-1] == "posts":
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
        post_id = _object_id(item.get("id"), f"post at {item.get('created_time')!r:.40}")
        created = parse_graph_time(item.get("created_time"))
        who = item.get("from")
        by_page = self._is_page(who) if who else post_id.startswith(f"{self.page_id}_")
        return IncomingPost(
            network=NETWORK,
            external_id=post_id,
            kind="page_post" if by_page else "visitor_post",
            source="feed",
            text=_text(item.get("message")) or _text(item.get("story")) or "",
            created_at=created,
            author=_author(who),
            conversation_id=post_id,
            url=_text(item.get("permalink_url")) or f"https://www.facebook.com/{post_id}",
            raw=item,
        )

    def comment(self, item: Json, *, post_id: str) -> IncomingPost:
        """Normalise a comment or a reply on ``post_id``; raise ``ValueError`` when malformed."""
        derived = ids_from_permalink(item.get("permalink_url"))
        comment_id = _object_id(item.get("id") or (derived[0] if derived else None), f"comment on {post_id}")
        if not isinstance(item.get("message"), str):
            raise ValueError(f"comment {comment_id} has no message")
        parent = item.get("parent")
        parent_id = _id(parent.get("id")) if isinstance(parent, dict) else (derived[1] if derived else None)
        if parent_id is not None and not is_graph_id(parent_id):
            raise ValueError(f"comment {comment_id} has an invalid parent id: {parent_id[:40]!r}")
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
            url=_text(item.get("permalink_url")) or f"https://www.facebook.com/{comment_id}",
            raw=item,
        )

    def message(self, item: Json, *, conversation: Json) -> IncomingPost:
        """Normalise a Messenger message; raise ``ValueError`` when malformed."""
        message_id = _object_id(item.get("id"), f"message in {str(conversation.get('id'))[:40]!r}")
        link = conversation.get("link")
        return IncomingPost(
            network=NETWORK,
            external_id=message_id,
            kind="own" if self._is_page(item.get("from")) else "dm",
            source="messages",
            text=_text(item.get("message")) or "",
            created_at=parse_graph_time(item.get("created_time")),
            author=_author(item.get("from")),
            is_public=False,
            conversation_id=str(conversation.get("id")),
            url=f"https://www.facebook.com{link}" if isinstance(link, str) and link.startswith("/") else None,
            raw=item,
        )


def _after(response: Any) -> str | None:
    paging = response.get("paging") if isinstance(response, dict) else None
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = _id(cursors.get("after")) if isinstance(cursors, dict) else None
    # A cursor that is not text (or absurdly long) cannot be sent back: the walk ends here instead.
    return after if after is not None and len(after) <= 1024 else None


def _time(value: Any) -> datetime | None:
    """A Graph time, or None when it is missing or unreadable."""
    try:
        return parse_graph_time(value)
    except ValueError:
        return None


def _ts(value: Any) -> int | None:
    at = _time(value)
    return int(at.timestamp()) if at is not None else None


def _object_gone(exc: BaseException) -> bool:
    # (#100) subcode 33: the post or conversation was deleted (or hidden from the page) since it was listed.
    return graph_code(exc) == (100, 33)


def _cursor_refused(exc: BaseException) -> bool:
    code, subcode = graph_code(exc)
    return code == 100 and subcode != 33


# Messenger ids seen are saved with the source; the store keeps the same number.
SEEN_IDS_KEPT = 5000


class _GraphListener:
    network = NETWORK
    source = ""
    endpoints: tuple[str, ...] = ()  # path fragments of this source's edges in the session's quota table

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

    def quota(self) -> dict[str, RateLimit]:
        """Graph's last usage headers on this source's edges, by edge."""
        session = getattr(self.graph, "session", None)
        return {path: q for fragment in self.endpoints for path, q in endpoint_limits(session, fragment).items()}

    def _check_usage(self) -> None:
        """Stop before a request while Graph reports 95 % or more of a quota used: a rate limit, not a crash."""
        now = time.time()
        for path, limit in self.quota().items():
            if isinstance(limit, GraphUsage) and limit.exhausted:
                raise RateLimited(
                    f"Facebook {self.source}: {limit.header} at {limit.used}% on {path}",
                    retry_after=max(1.0, limit.reset - now),
                )

    def _get(self, node: str, edge: str, **args: Any) -> Json:
        self._check_usage()
        with graph_errors(f"{self.source} fetch"):
            graph_node(node)  # a ValueError here is reported like a malformed response
            self.requests_made += 1
            result: Json = self.graph.get_connections(node, edge, **{k: v for k, v in args.items() if v is not None})
        return result

    def _edge_page(self, node: str, edge: str, args: Json, run: Json, *, resuming: bool) -> Json:
        """One page of ``node/edge`` from the run's ``after``/``until``; a refused saved cursor pages on by time.

        Only a cursor saved by an earlier poll can have expired; then the edge restarts from ``until`` = the
        oldest time it already stored (or from its newest item): items come again, none are skipped.
        """
        params = {**args, "limit": self.page_size, "after": run.get("after"), "until": run.get("until")}
        try:
            return self._get(node, edge, **params)
        except TemporaryFailure as exc:
            if not (resuming and run.get("after") and _cursor_refused(exc)):
                raise
        run["after"] = None
        run["until"] = run.get("oldest") if "until" in args else None
        run["refused"] = True
        return self._get(node, edge, **{**params, "after": None, "until": run["until"]})

    @staticmethod
    def _data(response: Any) -> list[Json]:
        data = response.get("data") if isinstance(response, dict) else None
        return [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []


# Graph answers at most 50 ids in one multi-id read (``GET /?ids=a,b,c``).
MULTI_ID_LIMIT = 50
DAY_SECONDS = 86_400


def _int(value: Any) -> int | None:
    """A whole number from saved state (ints, or digits as text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


@dataclass(slots=True)
class FeedRun:
    """Where a feed run stands, saved with each page: the feed walk, then one pass over the watched posts."""

    since: int | None = None  # the source cursor the run started from (unix seconds)
    newest: int | None = None  # newest created/updated time on the run's first feed page: the next cursor
    phase: str = "feed"  # "feed", then "comments"
    after: str | None = None  # the feed walk's after cursor
    until: int | None = None  # the feed walk's time bound after a refused after cursor
    oldest: int | None = None  # oldest created time the feed walk met
    listed: bool = False  # the first feed page was read (it alone sets ``newest``)
    by_comments: bool = False  # the feed had no updated_time: ``newest`` follows the comments read
    run_id: str = ""  # marks each watched post this run has read, so a resumed run reads the rest
    # The run began with no cursor or no watched posts: the feed walk goes on to the watch window's start.
    seeding: bool = False

    def to_json(self) -> Json:
        """The run as the JSON saved in the source's ``paging``."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> FeedRun | None:
        """A run saved by ``to_json`` (None when ``value`` is no run in progress)."""
        if not isinstance(value, dict) or value.get("phase") not in ("feed", "comments"):
            return None
        after = value.get("after")
        return cls(
            since=_int(value.get("since")),
            newest=_int(value.get("newest")),
            phase=value["phase"],
            after=after if isinstance(after, str) and after else None,
            until=_int(value.get("until")),
            oldest=_int(value.get("oldest")),
            listed=value.get("listed") is True,
            by_comments=value.get("by_comments") is True,
            run_id=str(value.get("run_id") or uuid.uuid4().hex),
            seeding=value.get("seeding") is True,
        )


class FacebookFeedListener(_GraphListener):
    """Posts on the page (its own and visitors') and the comments on every post active in the watch window.

    The cursor is a time (unix seconds). A run lists the feed newest first down to the first post older
    than the cursor, storing the new posts and adding every post it meets to the watched set. Then it reads
    the comments of every watched post, up to 50 posts a request (Graph's multi-id read with a ``comments``
    field expansion), each from its own cursor, so a post buried under any number of newer posts is still
    read and one post's backlog never hides another's. A post leaves the set when it has had no activity
    for ``watch_days``. Each page is saved with the run's resume point in ``paging`` and the watched posts
    it changed; ``max_pages`` bounds the feed pages and each post's comments pages per poll, and the next
    poll goes on from there. The cursor moves, when the run is done, to the newest created/updated time on
    the run's first feed page. The first run (no cursor) backfills one feed page.
    """

    source = "feed"
    endpoints = ("/feed", "/comments", "/?ids")

    def __init__(
        self,
        graph: Any,
        *,
        page_id: str,
        page_size: int = 25,
        max_pages: int = 3,
        watch_days: int = 30,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(graph, page_id=page_id, page_size=page_size, max_pages=max_pages)
        self.watch_days = watch_days
        self.clock = clock
        # The watched posts: loaded by the poller before each poll, kept in memory between bare ``fetch``es.
        self.watched: dict[str, Watch] = {}

    def set_watched(self, watched: list[Watch]) -> None:
        """Start from the stored watched posts."""
        self.watched = {w.external_id: w for w in watched}

    def _window_start(self) -> datetime:
        return self.clock() - timedelta(days=self.watch_days)

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield each feed page, then each batch of watched posts' comments, with the run's resume state."""
        saved = FeedRun.from_json(paging)
        resuming = saved is not None
        since = _int(cursor)
        run = saved or FeedRun(since=since, run_id=uuid.uuid4().hex, seeding=since is None or not self.watched)
        pages = 0
        while run.phase == "feed":
            self.requests_made = 0
            posts: list[IncomingPost] = []
            skipped: list[str] = []
            watch: list[Watch] = []
            walk: Json = {"after": run.after, "until": run.until, "oldest": run.oldest}
            response = self._edge_page(self.page_id, "feed", {"fields": POST_FIELDS, "until": None}, walk,
                                       resuming=resuming)  # fmt: skip
            resuming = False
            run.until = _int(walk.get("until"))
            data = self._data(response)
            done = self._feed_page(data, run, posts, skipped, watch)
            run.listed = True
            run.after = _after(response)
            if done or run.after is None:
                run.phase, run.after, run.until, run.oldest = "comments", None, None, None
            pages += 1
            yield FetchResult(posts, next_cursor=None, requests_made=self.requests_made, skipped=skipped,
                              paging=run.to_json(), items_read=len(data), watch=watch)  # fmt: skip
            if run.phase == "feed" and pages >= self.max_pages:
                return  # the page bound: the next poll resumes the feed walk from the saved ``after``
        yield from self._comments_pass(cursor, run)

    def _feed_page(
        self, data: list[Json], run: FeedRun, posts: list[IncomingPost], skipped: list[str], watch: list[Watch]
    ) -> bool:
        """Take one feed page into ``posts`` and the watched set; True when the feed walk is done."""
        since, first = run.since, not run.listed
        window_start = self._window_start()
        floor = int(window_start.timestamp())
        for item in data:
            created, updated = _ts(item.get("created_time")), _ts(item.get("updated_time"))
            # The first run stores one page; later runs what is newer than the cursor. A seeding walk
            # goes on down the watch window only to watch the older posts.
            new = (since is None and first) or (since is not None and created is not None and created >= since)
            if new:
                try:
                    posts.append(self.items.post(item))
                except ValueError as exc:
                    skipped.append(f"feed: {exc}")
                    continue
            latest = max(filter(None, (created, updated)), default=None)
            if first and latest is not None:
                run.newest = max(latest, run.newest or 0)
            if first and updated is None:
                # Without updated_time (not asked for, as in some recordings) only the comments' own
                # times can say how far this run reached: the cursor follows them.
                run.by_comments = True
            post_id = item.get("id")
            if not isinstance(post_id, str) or not is_graph_id(post_id) or latest is None:
                continue
            active = datetime.fromtimestamp(latest, UTC)
            known = self.watched.get(post_id)
            if known is not None:
                if active > known.last_activity:
                    self._watch(replace(known, last_activity=active), watch)
            elif new or (run.seeding and created is not None and created >= floor):
                # A new post (or, seeding, one created inside the window) enters the set; an older one stays
                # out. Its comments before the run's cursor (or, past the first run's first page, before the
                # newest item that page showed) were read with the feed or predate what this listener
                # promises. The first run's first page backfills them, even beyond the window, once.
                start = since if since is not None else (None if first else run.newest)
                self._watch(Watch(post_id, active, cursor=str(start) if start is not None else None), watch)
        created_times = [t for t in (_ts(i.get("created_time")) for i in data) if t is not None]
        if created_times:
            run.oldest = min([*created_times, *([run.oldest] if run.oldest else [])])
        oldest = _ts(data[-1].get("created_time")) if data else None
        # Later runs page on while posts are still new; a seeding run while they are inside the window.
        bound = floor if run.seeding else since
        return bound is None or oldest is None or oldest < bound

    def _watch(self, entry: Watch, watch: list[Watch]) -> None:
        self.watched[entry.external_id] = entry
        watch.append(entry)

    def _due(self, run: FeedRun) -> list[Watch]:
        """The watched posts this run has not read yet, those read longest ago first."""
        due = [w for w in self.watched.values() if w.read_in_run != run.run_id]
        return sorted(due, key=lambda w: (_int(w.cursor) or -1, w.external_id))

    def _comments_pass(self, cursor: str | None, run: FeedRun) -> Iterator[FetchResult]:
        """Read every due watched post's comments, a batch a page; the run ends when none is left."""
        cut: set[str] = set()  # posts whose backlog outran this poll's page bound: read on the next poll
        while True:
            due = [w for w in self._due(run) if w.external_id not in cut]
            if not due:
                break
            self.requests_made = 0
            posts: list[IncomingPost] = []
            skipped: list[str] = []
            watch: list[Watch] = []
            unwatch: list[str] = []
            items = self._read_batch(due[:MULTI_ID_LIMIT], run, posts, skipped, watch, unwatch, cut)
            for post_id in unwatch:
                self.watched.pop(post_id, None)
            for entry in watch:
                self.watched[entry.external_id] = entry
            last = not [w for w in self._due(run) if w.external_id not in cut]
            if last and not cut:
                yield self._finish(cursor, run, posts, skipped, watch, unwatch, items)
                return
            yield FetchResult(posts, next_cursor=None, requests_made=self.requests_made, skipped=skipped,
                              paging=run.to_json(), items_read=items, watch=watch, unwatch=unwatch)  # fmt: skip
        if cut:
            return  # the next poll resumes this run with the posts whose backlog is left
        self.requests_made = 0
        yield self._finish(cursor, run, [], [], [], [], 0)

    def _finish(
        self,
        cursor: str | None,
        run: FeedRun,
        posts: list[IncomingPost],
        skipped: list[str],
        watch: list[Watch],
        unwatch: list[str],
        items: int,
    ) -> FetchResult:
        newest = run.newest
        next_cursor = str(max(newest, run.since or 0)) if newest is not None else cursor
        return FetchResult(posts, next_cursor=next_cursor, requests_made=self.requests_made, skipped=skipped,
                           paging={}, items_read=items, watch=watch, unwatch=unwatch)  # fmt: skip

    def _read_batch(
        self,
        batch: list[Watch],
        run: FeedRun,
        posts: list[IncomingPost],
        skipped: list[str],
        watch: list[Watch],
        unwatch: list[str],
        cut: set[str],
    ) -> int:
        """Read one multi-id batch of watched posts' comments (each from its own cursor); items read."""
        items = 0
        for entry in [w for w in batch if _int(w.cursor) is None]:
            # Never read yet (the first run's backfill): newest first on its own edge, at most ``max_pages``.
            items += self._read_post(entry, None, None, run, posts, skipped, watch, unwatch, cut)
        batch = [w for w in batch if _int(w.cursor) is not None]
        if not batch:
            return items
        since = min(c for c in (_int(w.cursor) for w in batch) if c is not None)
        expansion = f"comments.filter(stream).order(chronological).since({since})"
        expansion += f".limit({self.page_size}){{{COMMENT_FIELDS}}}"
        self._check_usage()
        try:
            with graph_errors(f"{self.source} fetch"):
                ids = [graph_node(w.external_id) for w in batch]
                self.requests_made += 1
                response = self.graph.get_objects(ids, fields=f"updated_time,{expansion}")
        except TemporaryFailure as exc:
            if graph_code(exc)[0] != 100:
                raise
            # (#100) One id of the batch is gone and Graph refuses them all: each post is read on its own.
            skipped.append(f"comments: a batch of {len(batch)} posts refused, read one by one ({exc})")
            response = {}
        for entry in batch:
            found = response.get(entry.external_id) if isinstance(response, dict) else None
            items += self._read_post(entry, found if isinstance(found, dict) else None, since, run, posts,
                                     skipped, watch, unwatch, cut)  # fmt: skip
        return items

    def _read_post(
        self,
        entry: Watch,
        found: Json | None,
        batch_since: int | None,
        run: FeedRun,
        posts: list[IncomingPost],
        skipped: list[str],
        watch: list[Watch],
        unwatch: list[str],
        cut: set[str],
    ) -> int:
        """Take one watched post's comments, oldest first from its cursor, paging on up to ``max_pages``."""
        post_id = entry.external_id
        own = _int(entry.cursor)
        backfill = own is None
        activity = [entry.last_activity]
        newest = own
        page: Json | None = None
        query_since = own
        if found is not None:
            page = found.get("comments") if isinstance(found.get("comments"), dict) else {}
            query_since = batch_since  # a cursor from the batch's answer pages on in the batch's query
            if (updated := _time(found.get("updated_time"))) is not None:
                activity.append(updated)
        after: str | None = None
        pages = 0 if page is None else 1
        items = 0
        while True:
            if page is None:
                try:
                    page = self._get(post_id, "comments", fields=COMMENT_FIELDS, filter="stream",
                                     order="reverse_chronological" if backfill else "chronological",
                                     since=query_since, limit=self.page_size,
                                     after=after)  # fmt: skip
                except TemporaryFailure as exc:
                    if _object_gone(exc):
                        skipped.append(f"comments: post {post_id} is gone ({exc})")
                        unwatch.append(post_id)
                        return items
                    if not (after and _cursor_refused(exc)):
                        raise
                    # The after cursor lapsed: go on by time from the newest comment read (inclusive).
                    query_since, after, page = newest, None, None
                    continue
                pages += 1
            data = self._data(page)
            items += len(data)
            for item in data:
                created = _ts(item.get("created_time"))
                if own is not None and created is not None and created < own:
                    continue  # before this post's cursor: an earlier run read it
                try:
                    posts.append(self.items.comment(item, post_id=post_id))
                except ValueError as exc:
                    skipped.append(f"comments: {exc}")
                    continue
                if created is not None:
                    newest = max(created, newest or 0)
                    activity.append(datetime.fromtimestamp(created, UTC))
                    if run.by_comments:
                        run.newest = max(created, run.newest or 0)
            after = _after(page)
            page = None
            if after is None or pages >= self.max_pages:
                break
        # A backfill takes the newest ``max_pages`` pages and is done; later reads go on from the newest.
        done = after is None or backfill
        if done and run.newest is not None and not run.by_comments:
            # Every comment made after this read is newer than the first feed page's newest time.
            newest = max(newest or 0, run.newest)
        last_activity = max(activity)
        if done and last_activity < self._window_start():
            unwatch.append(post_id)  # no activity for ``watch_days``: the post's window has ended
            return items
        if not done:
            cut.add(post_id)  # read again on the next poll, from the newest comment taken now
        watch.append(Watch(post_id, last_activity, cursor=str(newest) if newest is not None else None,
                           read_in_run=run.run_id if done else entry.read_in_run))  # fmt: skip
        return items

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch new posts and comments since ``cursor`` in one result (an unfinished run keeps the cursor)."""
        return merge_pages(self.fetch_pages(cursor, seen_ids, {}), cursor)


class FacebookMessagesListener(_GraphListener):
    """Messenger conversations with the page, committed page by page; message ids already seen are skipped.

    A run lists the conversations updated since the cursor (Graph sorts them by ``updated_time``, newest
    first), then reads each one's messages, newest first, down to a message already seen or older than
    the cursor, oldest change first. ``paging`` keeps the conversations still to read and the ``after``
    cursor of the one in progress; the cursor moves, when the run is done, to the newest ``updated_time``
    of the run's first conversations page. The first run backfills one page of conversations and at most
    ``max_pages`` pages of each one's messages.
    """

    source = "messages"
    endpoints = ("/conversations", "/messages")

    def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
        """Yield each conversations or messages page of the run (new, or resumed from ``paging``)."""
        resuming = paging.get("phase") in ("conversations", "messages")
        since = int(cursor) if cursor and cursor.isdigit() else None
        run: Json = (
            dict(paging) if resuming else {"since": since, "newest": None, "phase": "conversations", "pending": []}
        )
        since = run.get("since")
        seen_list = list(seen_ids)
        seen = set(seen_list)
        pages = 0
        while True:
            self.requests_made = 0
            posts: list[IncomingPost] = []
            skipped: list[str] = []
            if run["phase"] == "conversations":
                response = self._edge_page(self.page_id, "conversations",
                                           {"platform": "messenger", "fields": CONVERSATION_FIELDS}, run,
                                           resuming=resuming)  # fmt: skip
                if run.pop("refused", None):
                    run["listed"] = False  # listing again from the top: its first page sets ``newest`` again
                data = self._data(response)
                done = self._conversations_page(data, since, run, skipped, first=not run.get("listed"))
                run["listed"] = True
                run["after"] = _after(response)
                if done or run["after"] is None or since is None:
                    # Oldest change first: the longest-waiting customers are read first when a run is cut off.
                    run["pending"] = sorted(run["pending"], key=lambda c: (c.get("updated") or 0, c["id"]))
                    self._next_conversation(run, phase="messages")
            else:
                conv = run["pending"][0]
                try:
                    response = self._edge_page(conv["id"], "messages", {"fields": MESSAGE_FIELDS}, run,
                                               resuming=resuming)  # fmt: skip
                except TemporaryFailure as exc:
                    if not _object_gone(exc):
                        raise
                    skipped.append(f"messages: conversation {conv['id']} is gone ({exc})")
                    response = {}
                if run.pop("refused", None):
                    # Restarted from the newest message: ids stored earlier in this walk are no stop sign.
                    run["stop_at_seen"] = False
                data = self._data(response)
                stop = self._messages_page(data, conv, since, run, seen, seen_list, posts, skipped)
                backfilled = since is None and pages + 1 >= self.max_pages
                run["after"] = None if stop or backfilled else _after(response)
                if run["after"] is None:
                    run["pending"] = run["pending"][1:]
                    self._next_conversation(run, phase="messages")
            resuming = False
            pages += 1
            seen_list = seen_list[-SEEN_IDS_KEPT:]
            finished = run["phase"] == "messages" and not run["pending"]
            walk_ended = run.get("after") is None
            if finished:
                newest = run.get("newest")
                next_cursor = str(max(newest, since or 0)) if newest is not None else cursor
                yield FetchResult(posts, next_cursor=next_cursor, seen_ids=list(seen_list),
                                  requests_made=self.requests_made, skipped=skipped, paging={},
                                  items_read=len(data))  # fmt: skip
                return
            yield FetchResult(posts, next_cursor=None, seen_ids=list(seen_list), requests_made=self.requests_made,
                              skipped=skipped, paging=dict(run), items_read=len(data))  # fmt: skip
            if walk_ended:
                pages = 0
            elif pages >= self.max_pages:
                return  # the page bound: the next poll resumes this edge from the saved ``after``

    @staticmethod
    def _next_conversation(run: Json, *, phase: str) -> None:
        run.update(phase=phase, after=None, until=None, oldest=None, stop_at_seen=True)

    @staticmethod
    def _conversations_page(data: list[Json], since: int | None, run: Json, skipped: list[str], *, first: bool) -> bool:
        """Add the page's changed conversations to ``pending``; True when older ones begin."""
        pending: list[Json] = run["pending"]
        known = {c["id"] for c in pending}
        for conv in data:
            updated = _ts(conv.get("updated_time"))
            if first and updated is not None:
                run["newest"] = max(updated, run.get("newest") or 0)
            if since is not None and (updated is None or updated < since):
                continue
            if not isinstance(conv.get("id"), str) or not is_graph_id(conv["id"]):
                skipped.append(f"messages: conversation without a valid id: {str(conv.get('id'))[:40]!r}")
                continue
            if conv["id"] not in known:
                known.add(conv["id"])
                pending.append({"id": conv["id"], "link": conv.get("link"), "updated": updated})
        last = _ts(data[-1].get("updated_time")) if data else None
        return last is None or (since is not None and last < since)

    def _messages_page(
        self,
        data: list[Json],
        conv: Json,
        since: int | None,
        run: Json,
        seen: set[str],
        seen_list: list[str],
        posts: list[IncomingPost],
        skipped: list[str],
    ) -> bool:
        """Take one page of a conversation's messages; True when the walk reached what earlier runs stored."""
        stop = False
        new: list[str] = []
        for item in data:
            message_id = str(item.get("id"))
            created = _ts(item.get("created_time"))
            if since is not None and created is not None and created < since:
                stop = True  # older than the cursor: the run that set it read this conversation down to here
                break
            if message_id in seen:
                if run.get("stop_at_seen", True):
                    stop = True
                continue
            seen.add(message_id)
            new.append(message_id)
            try:
                posts.append(self.items.message(item, conversation=conv))
            except ValueError as exc:
                skipped.append(f"messages: {exc}")
        # Pages come newest first; seen ids are kept oldest first so trimming drops the oldest.
        seen_list.extend(reversed(new))
        return stop

    def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
        """Fetch new messages in conversations updated since ``cursor`` in one result, with the seen ids."""
        return merge_pages(self.fetch_pages(cursor, seen_ids, {}), cursor)


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _newest_match(pages: Iterator[list[Json]], ours: Callable[[Json], bool], not_before: datetime | None) -> str | None:
    """The id of the first item, newest first, that ``ours`` accepts, stopping at items older than ``not_before``."""
    for page in pages:
        for item in page:
            if created_before(_time(item.get("created_time")), not_before):
                return None  # newest first: the rest is older than the approval too
            found = _id(item.get("id"))
            if found is not None and ours(item):
                return found
    return None


def _send_target(external_id: str, author_external_id: str | None, kind: str) -> None:
    """Refuse, for good, a reply whose target id could not stand in a Graph path (a hostile or broken row)."""
    target = author_external_id if kind == "dm" else external_id
    if target is not None and not is_graph_id(target):
        raise PermanentFailure(f"Facebook reply: not a Graph object id: {target[:40]!r}")


class FacebookSender:
    """Sends replies on Facebook: a comment for public posts, the Send API for Messenger."""

    network = NETWORK

    def __init__(self, graph: Any, *, page_id: str | None = None, lookup_max_pages: int = LOOKUP_MAX_PAGES) -> None:
        self.graph = graph
        self.page_id = page_id
        self.lookup_max_pages = lookup_max_pages

    def _page_id(self) -> str:
        if self.page_id is None:
            with graph_errors("verify"):
                self.page_id = str(self.graph.get_object("me", fields="id")["id"])
        return self.page_id

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
        """Look for the page's reply with ``text`` under comment ``external_id`` (or in the Messenger thread).

        Pages back to ``not_before`` (the approval, less the clock skew), however busy the thread; comments and
        messages older than it are not this reply. ``TemporaryFailure`` when the walk cannot be finished.
        """
        del idempotency_key
        _send_target(external_id, author_external_id, kind)  # before any request: the id goes into a path
        page = self._page_id()

        def ours(item: Json) -> bool:
            by_page = str(_dict(item.get("from")).get("id")) == page
            return by_page and same_reply_text(text, str(item.get("message", "")))

        if kind == "dm":
            if not author_external_id:
                return None
            conversations = self._lookup_pages(page, "conversations", "look up message", platform="messenger",
                                               user_id=author_external_id, fields="id")  # fmt: skip
            for convs in conversations:
                for conv in convs:
                    if not is_graph_id(str(conv.get("id", ""))):
                        continue  # a thread we cannot name in a path cannot hold our reply either
                    # Messages come newest first: page back until they are older than the approval.
                    messages = self._lookup_pages(conv["id"], "messages", "look up message", limit=LOOKUP_PAGE_SIZE,
                                                  fields="id,message,from,created_time")  # fmt: skip
                    found = _newest_match(messages, ours, not_before)
                    if found is not None:
                        return SentReply(external_id=found)
            return None
        # The reply is a comment on the target (a post, or a comment's thread), newer than its approval.
        node = self._thread_of(external_id) if kind == "comment" else external_id
        since = int(not_before.timestamp()) if not_before is not None else None
        replies = self._lookup_pages(node, "comments", "look up comment", limit=LOOKUP_PAGE_SIZE, since=since,
                                     order="reverse_chronological", fields="id,message,from,created_time")  # fmt: skip
        comment_id = _newest_match(replies, ours, not_before)
        return SentReply(external_id=comment_id, url=f"https://www.facebook.com/{comment_id}") if comment_id else None

    def _thread_of(self, comment_id: str) -> str:
        """The comment whose ``/comments`` lists our replies to ``comment_id``: its parent when it is a reply."""
        with graph_errors("look up comment"):
            target = self.graph.get_object(comment_id, fields="id,parent")
        parent = _id(_dict(_dict(target).get("parent")).get("id"))
        # Graph keeps threads one level deep: a reply to a reply is listed under the top-level comment.
        return parent if parent is not None and is_graph_id(parent) else comment_id

    def _lookup_pages(self, node: str, edge: str, action: str, **args: Any) -> Iterator[list[Json]]:
        """Yield each page of ``node/edge`` (objects only), following the ``after`` cursor; raise past the cap."""
        after: str | None = None
        for _ in range(self.lookup_max_pages):
            query = {k: v for k, v in {**args, "after": after}.items() if v is not None}
            with graph_errors(action):
                response = self.graph.get_connections(node, edge, **query)
            data = _dict(response).get("data")
            yield [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []
            after = _after(response)
            if after is None:
                return
        # Not settled is not absent: the outbox keeps the reply in ``sending`` and looks again later.
        raise TemporaryFailure(f"Facebook {action}: not settled within {self.lookup_max_pages} pages")

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        """Comment on ``external_id``, or message ``author_external_id`` when ``kind`` is dm."""
        del idempotency_key  # Graph has no idempotency key; the outbox reconciles before any retry
        _send_target(external_id, author_external_id, kind)
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
