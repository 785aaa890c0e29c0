"""Fuzzing every payload parser: recorded fixtures mutated field by field, and arbitrary JSON.

The contract, for each parser: it returns a well-formed result or raises the project's clear error for
that layer (``ValueError`` for one item, a ``ListenerError`` for a whole response, a pydantic
``ValidationError`` for settings, an error line for ``escucha score``), never an unexpected
``TypeError``/``KeyError``/``AttributeError``/``OverflowError``; and a bad item in a page never costs
the good items beside it (``listeners/base.py``: skipped items carry a reason, the rest is kept).
"""

from __future__ import annotations

import copy
import io
import json
import math
import string
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hst
from pydantic import ValidationError
from requests.structures import CaseInsensitiveDict
from sqlalchemy import func, select
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from classifier.train import read_tsv
from escucha.classifier_cli import parse_line, score_stream
from ground.settings import Settings
from models.store import post_row, save_posts
from models.tables import Post, utcnow
from networks.base import (
    MAX_RETRY_AFTER,
    FetchResult,
    IncomingAuthor,
    IncomingPost,
    ListenerError,
    RateLimit,
    RateLimited,
)
from networks.facebook.adapter import (
    FacebookFeedListener,
    FacebookMessagesListener,
    GraphItems,
    ids_from_permalink,
    make_graph,
    parse_graph_time,
)
from networks.facebook.settings import FacebookSettings
from networks.fake import b64, fields, unb64, unix_or_iso
from networks.fake import parse_graph_time as sandbox_graph_time
from networks.http import GraphUsage, RewritingSession, graph_usage
from networks.registry import NETWORKS
from networks.x.adapter import XDMListener, XMentionsListener, XSearchListener, XTweets, make_x_client, parse_x_time
from networks.x.settings import XSettings
from networks.x.text import X_MAX_WEIGHT, truncate_x, weighted_length
from responder.care import parse_rating
from responder.policy import parse_codes
from sandbox.server import Sandbox
from tests.support.paths import FIXTURES

BRAND = "1072250532645998596"
PAGE = "102030405060708"
# The longest pause any header may impose (past it a source stops for years, or the scheduler overflows).
MAX_PAUSE = MAX_RETRY_AFTER
INT32 = 2**31 - 1
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies ------------------------------------------------------------------------------------

HUGE = "queja " * 20_000  # 120k characters
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud83d",
    "\u202eevil\u202c",
    "Z̷̢̛a̶̡l̵̨g̵o̶" * 20,
    "<script>alert(1)</script>",
    "9" * 5000,
    HUGE,
    "1600000000000000001",
    "-1",
    "0",
    "1e999",
    "Infinity",
    "NaN",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+1400",
    "9999-12-31T23:59:59-1400",
    "2022-11-07T18:11:04.000Z",
    "2021-07-04T19:50:58+0000",
    "2026-02-30T10:00:00+0000",
    "https://www.facebook.com/1/posts",
    "https://www.facebook.com/1/posts/2/?comment_id=",
    "https://www.facebook.com/1/posts/2/?comment_id=3&reply_comment_id=4",
    "javascript:alert(1)",
    "/inbox/1/",
]
NUMBERS = hst.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30), math.inf, -math.inf, math.nan, 1e308, 0.5])
SCALARS = (
    hst.none()
    | hst.booleans()
    | hst.integers(min_value=-(2**70), max_value=2**70)
    | hst.floats()
    | NUMBERS
    | hst.text(max_size=24)
    | hst.sampled_from(NASTY)
)
KEYS = hst.sampled_from(
    ["id", "text", "message", "data", "meta", "includes", "users", "errors", "paging", "from", "created_time"]
) | hst.text(max_size=10)
JSON = hst.recursive(
    SCALARS, lambda inner: hst.lists(inner, max_size=4) | hst.dictionaries(KEYS, inner, max_size=4), max_leaves=10
)


def _twarc_pages() -> list[dict[str, Any]]:
    pages = []
    for path in sorted((FIXTURES / "x" / "twarc-v2").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                page = json.loads(line)
            except ValueError:
                continue  # the recording of a stream cut mid-line
            if isinstance(page, dict) and page.get("data"):
                pages.append(page)
    return pages


def _graph(name: str) -> Any:
    return json.loads((FIXTURES / "facebook" / "graph-api" / name).read_text(encoding="utf-8"))


PAGES = _twarc_pages()
TWEETS = [t for p in PAGES for t in (p["data"] if isinstance(p["data"], list) else [p["data"]])]
USERS = [u for p in PAGES for u in (p.get("includes") or {}).get("users", [])]
INCLUDED = [t for p in PAGES for t in (p.get("includes") or {}).get("tweets", [])]
DM_EVENTS = [
    {
        "id": "1582838223637028869",
        "event_type": "MessageCreate",
        "text": "hola, mi pedido no llega",
        "sender_id": "1324426487048765440",
        "dm_conversation_id": f"1324426487048765440-{BRAND}",
        "created_at": "2022-10-19T20:58:00.000Z",
    }
]
FB_POSTS = [
    *_graph("posts/feed_fields_p1.json")["data"],
    *_graph("posts/feeds_default_fields_p1.json")["data"],
    _graph("posts/single_post_data_fields.json"),
]
FB_COMMENTS = [*_graph("comments/comments_p1.json")["data"], *_graph("comments/comments_info.json").values()]
FB_MESSAGES = list(_graph("messages/messages_info.json").values())
FB_CONVERSATIONS = list(_graph("conversations/cvses_info.json").values())


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, dict | list)]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict | list)]
    return []


@hst.composite
def mutated(draw: hst.DrawFn, templates: list[Any], field_names: tuple[str, ...] = ()) -> Any:
    """A deep copy of a recorded item with 1–4 fields (at any depth) removed or replaced by junk."""
    item = copy.deepcopy(draw(hst.sampled_from(templates)))
    for _ in range(draw(hst.integers(min_value=1, max_value=4))):
        target = item
        for _depth in range(draw(hst.integers(min_value=0, max_value=2))):
            inner = _children(target)
            if not inner:
                break
            target = draw(hst.sampled_from(inner))
        if isinstance(target, dict):
            key = draw(hst.sampled_from(sorted({*target, *field_names})))
            if key in target and draw(hst.booleans()):
                del target[key]
            else:
                target[key] = draw(JSON)
        elif isinstance(target, list):
            if target and draw(hst.booleans()):
                target[draw(hst.integers(min_value=0, max_value=len(target) - 1))] = draw(JSON)
            else:
                target.append(draw(JSON))
    return item


TWEET_FIELDS = ("id", "text", "author_id", "created_at", "lang", "conversation_id", "referenced_tweets", "entities")
USER_FIELDS = ("id", "username", "name", "public_metrics", "verified")
DM_FIELDS = ("id", "event_type", "text", "sender_id", "dm_conversation_id", "created_at")
FB_FIELDS = ("id", "message", "story", "created_time", "updated_time", "from", "permalink_url", "parent", "link")

# --- what a well-formed parse looks like -----------------------------------------------------------


def assert_well_formed(post: Any, network: str) -> None:
    """Every field has the type the store and the desk rely on."""
    assert isinstance(post, IncomingPost) and post.network == network
    assert isinstance(post.external_id, str) and post.external_id.strip()
    assert isinstance(post.text, str) and isinstance(post.kind, str) and isinstance(post.source, str)
    assert isinstance(post.created_at, datetime) and post.created_at.utcoffset() is not None
    post.created_at.astimezone(UTC)  # representable in UTC
    for value in (post.lang, post.conversation_id, post.in_reply_to_external_id, post.url):
        assert value is None or isinstance(value, str), value
    assert isinstance(post.is_public, bool) and isinstance(post.manual_only, bool)
    assert isinstance(post.raw, dict)
    author = post.author
    if author is not None:
        assert isinstance(author, IncomingAuthor) and author.network == network
        assert isinstance(author.external_id, str) and author.external_id
        assert isinstance(author.username, str) and isinstance(author.display_name, str)
        assert isinstance(author.followers_count, int) and 0 <= author.followers_count <= INT32
        assert isinstance(author.verified, bool)
    # The store can always make a row of it (or say why not).
    row, _ = post_row(post, author_id=None, now=utcnow())
    assert row is None or isinstance(row["text"], str)


def parse_or_value_error(parse: Callable[[], Any], network: str) -> IncomingPost | None:
    try:
        post = parse()
    except ValueError:
        return None
    assert_well_formed(post, network)
    return post


# --- X: one item -----------------------------------------------------------------------------------


def _x_index(users: Any, included: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from networks.x.adapter import _index

    return _index({"includes": {"users": users, "tweets": included}})


@FUZZ
@given(
    tweet=mutated(TWEETS, TWEET_FIELDS) | JSON.filter(lambda v: isinstance(v, dict)),
    users=hst.lists(mutated(USERS, USER_FIELDS), max_size=3) | JSON,
    included=hst.lists(mutated(INCLUDED or TWEETS, TWEET_FIELDS), max_size=2) | JSON,
    kind=hst.sampled_from(["mention", "search"]),
)
def test_x_tweet_parser_returns_a_well_formed_post_or_a_value_error(
    tweet: dict[str, Any], users: Any, included: Any, kind: str
) -> None:
    tweets = XTweets(brand_user_id=BRAND, brand_username="EscuchaHelp")
    user_index, tweet_index = _x_index(users, included)
    parse_or_value_error(
        lambda: tweets.tweet(tweet, kind=kind, source=kind + "s", users=user_index, included=tweet_index), "x"
    )


@FUZZ
@given(
    event=mutated(DM_EVENTS, DM_FIELDS) | JSON.filter(lambda v: isinstance(v, dict)),
    users=hst.lists(mutated(USERS, USER_FIELDS), max_size=3) | JSON,
)
def test_x_dm_parser_returns_a_well_formed_post_or_a_value_error(event: dict[str, Any], users: Any) -> None:
    user_index, _ = _x_index(users, [])
    post = parse_or_value_error(
        lambda: XTweets(brand_user_id=BRAND, brand_username=None).dm(event, users=user_index), "x"
    )
    if post is not None:
        assert post.is_public is False and post.source == "dms"


@FUZZ
@given(value=JSON, tweet_id=hst.sampled_from(["1", "1600000000000000001", "9" * 40, "9" * 400]))
@example(value="0001-01-01T00:00:00+14:00", tweet_id="1")
@example(value=None, tweet_id="9" * 400)
def test_x_time_parser_gives_an_aware_time_or_a_value_error(value: Any, tweet_id: str) -> None:
    try:
        parsed = parse_x_time(value, tweet_id)
    except ValueError:
        return
    assert parsed.utcoffset() == timedelta(0)


def test_the_recorded_tweets_parse_as_they_are() -> None:
    # The mutations start from payloads that parse: the fuzzing tests the mutation, not a broken template.
    tweets = XTweets(brand_user_id=BRAND, brand_username="EscuchaHelp")
    for page in PAGES:
        users, included = _x_index(page.get("includes", {}).get("users", []), [])
        for tweet in page["data"] if isinstance(page["data"], list) else [page["data"]]:
            post = tweets.tweet(tweet, kind="mention", source="mentions", users=users, included=included)
            assert_well_formed(post, "x")
    assert len(TWEETS) >= 5 and USERS


# --- X: whole responses through the real tweepy client ---------------------------------------------

JSON_TYPE = "application/json; charset=utf-8"
Canned = tuple[int, dict[str, str], bytes]


class CannedSession(RewritingSession):
    """The one session type the clients use, answering from ``answer(method, url)`` instead of a network.

    Response hooks run as for a real response, so the rate-limit headers go through the real parser.
    """

    def __init__(self, answer: Callable[[str, str], Canned]) -> None:
        super().__init__(None)
        self.answer = answer
        self.calls = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls += 1
        method, url = str(method), str(url)
        status, headers, body = self.answer(method, url)
        response = requests.Response()
        response.status_code = status
        response.reason = "canned"
        response.headers = CaseInsensitiveDict(headers)
        response._content = body
        response._content_consumed = True  # type: ignore[attr-defined]
        response.url = url
        response.encoding = "utf-8"
        requests.hooks.dispatch_hook("response", self.hooks, response)
        return response


def good_tweet(n: int) -> dict[str, Any]:
    return {
        "id": str(1_600_000_000_000_000_100 + n),
        "text": f"@EscuchaHelp good tweet {n}",
        "author_id": "42",
        "created_at": "2026-02-01T10:00:00.000Z",
    }


def good_event(n: int) -> dict[str, Any]:
    return {
        "id": str(1_700_000_000_000_000_100 + n),
        "event_type": "MessageCreate",
        "text": f"good dm {n}",
        "sender_id": "42",
        "dm_conversation_id": f"42-{BRAND}",
        "created_at": "2026-02-01T10:00:00.000Z",
    }


RATE_HEADERS = hst.dictionaries(
    hst.sampled_from(["x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"]),
    hst.sampled_from(["0", "1", "450", "-5", "1e3", "abc", "", "9" * 30, str(2**63), "1700000000", " 12 "])
    | hst.integers(min_value=-(10**12), max_value=10**20).map(str),
)
STATUSES = hst.sampled_from([200] * 6 + [400, 401, 403, 404, 429, 500, 503])


@hst.composite
def page_body(
    draw: hst.DrawFn, good: list[dict[str, Any]], junk: hst.SearchStrategy[Any], extra: dict[str, Any]
) -> Any:
    """A response whose ``data`` mixes good items with junk, or (sometimes) any JSON at all."""
    if draw(hst.integers(min_value=0, max_value=9)) == 0:
        return draw(JSON)
    data = draw(hst.permutations([*good, *draw(hst.lists(junk, max_size=4))]))
    body: dict[str, Any] = {"data": data}
    for key, sane in extra.items():
        choice = draw(hst.sampled_from(["sane", "junk", "absent"]))
        if choice == "sane":
            body[key] = sane
        elif choice == "junk":
            body[key] = draw(JSON)
    return body


def _holds(body: Any, good: list[dict[str, Any]]) -> bool:
    """Whether ``body`` is a page whose ``data`` carries the good items (not the any-JSON variant)."""
    return isinstance(body, dict) and isinstance(body.get("data"), list) and all(g in body["data"] for g in good)


def _encode(draw: hst.DrawFn, body: Any) -> bytes:
    if draw(hst.integers(min_value=0, max_value=19)) == 0:
        return draw(hst.sampled_from([b"", b"{", b'{"data": [{"id": "1', b"\xff\xfe", b"null", b"<html>502</html>"]))
    return json.dumps(body).encode()  # Infinity and NaN included, as a sloppy server may send them


def assert_bounded_pause(exc: RateLimited) -> None:
    assert math.isfinite(exc.retry_after) and 0 < exc.retry_after <= MAX_PAUSE, exc.retry_after
    utcnow() + timedelta(seconds=exc.retry_after)  # what the poller and the worker do with it


def assert_sane_quota(quota: dict[str, RateLimit]) -> None:
    for limit in quota.values():
        assert isinstance(limit, RateLimit)
        for number in (limit.limit, limit.remaining, limit.reset):
            assert isinstance(number, int) and 0 <= number <= 2**53
        datetime.fromtimestamp(limit.reset, UTC)  # what the worker's pacing does with it


def fetch_or_clear_error(listener: Any) -> FetchResult | None:
    """One fetch: its result, or None after a listener error (a rate limit's pause must be bounded).

    Whatever happened, the quota the listener recorded must stay sane; anything else raised fails the test.
    """
    try:
        result = listener.fetch(None, [])
    except RateLimited as exc:
        assert_bounded_pause(exc)
        return None
    except ListenerError:
        return None
    finally:
        assert_sane_quota(listener.quota())
    assert isinstance(result, FetchResult)
    return result


X_EXTRA = {
    "includes": {"users": [{"id": "42", "username": "ana", "name": "Ana", "public_metrics": {"followers_count": 7}}]},
    "meta": {"result_count": 3, "newest_id": "1600000000000000199"},
    "errors": [{"resource_id": "1", "resource_type": "tweet", "title": "Not Found Error"}],
}
X_ITEM_JUNK = mutated(TWEETS, TWEET_FIELDS) | JSON
DM_ITEM_JUNK = mutated(DM_EVENTS, DM_FIELDS) | JSON


@FUZZ
@given(data=hst.data(), source=hst.sampled_from(["mentions", "search", "dms"]))
def test_x_listeners_keep_every_good_item_whatever_else_the_response_holds(data: hst.DataObject, source: str) -> None:
    make_good, junk = (good_event, DM_ITEM_JUNK) if source == "dms" else (good_tweet, X_ITEM_JUNK)
    good = [make_good(n) for n in range(data.draw(hst.integers(min_value=0, max_value=3)))]
    body = data.draw(page_body(good, junk, X_EXTRA))
    status = data.draw(STATUSES)
    headers = {"content-type": JSON_TYPE, **data.draw(RATE_HEADERS)}
    raw = _encode(data.draw, body)
    session = CannedSession(lambda method, url: (status, headers, raw))
    client = make_x_client(Settings(_env_file=None, x_bearer_token="b", x_consumer_key="k", x_consumer_secret="s",
                                    x_access_token="a", x_access_token_secret="t"), session)  # fmt: skip
    common: dict[str, Any] = {"brand_user_id": BRAND, "brand_username": "EscuchaHelp", "max_pages": 2}
    listener = {
        "mentions": lambda: XMentionsListener(client, **common),
        "search": lambda: XSearchListener(client, query="escucha", **common),
        "dms": lambda: XDMListener(client, **common),
    }[source]()
    result = fetch_or_clear_error(listener)
    if result is None:
        return
    for post in result.posts:
        assert_well_formed(post, "x")
    intact = status == 200 and raw == json.dumps(body).encode() and _holds(body, good)
    if intact:
        kept = {p.external_id for p in result.posts}
        assert {g["id"] for g in good} <= kept, result.skipped


# --- X: rate-limit headers on a 429 ----------------------------------------------------------------


@FUZZ
@given(reset=hst.integers(min_value=-(10**15), max_value=10**18) | hst.sampled_from([str(2**70), "soon", ""]))
def test_a_429_becomes_a_rate_limit_with_a_pause_the_scheduler_can_take(reset: int | str) -> None:
    headers = {"content-type": JSON_TYPE, "x-rate-limit-reset": str(reset)}
    session = CannedSession(lambda method, url: (429, headers, b'{"title": "Too Many Requests"}'))
    client = make_x_client(Settings(_env_file=None, x_bearer_token="b"), session)
    try:
        XSearchListener(client, query="q", brand_user_id=BRAND).fetch(None, [])
    except RateLimited as exc:
        assert_bounded_pause(exc)
    except ListenerError:
        assert not str(reset).lstrip("-").isdigit()  # only an unreadable header may be a plain failure
    else:
        pytest.fail("a 429 must not pass as a page")


# --- Facebook: one item ----------------------------------------------------------------------------


@FUZZ
@given(item=mutated(FB_POSTS, FB_FIELDS) | JSON.filter(lambda v: isinstance(v, dict)))
def test_graph_post_parser_returns_a_well_formed_post_or_a_value_error(item: dict[str, Any]) -> None:
    parse_or_value_error(lambda: GraphItems(PAGE).post(item), "facebook")


@FUZZ
@given(item=mutated(FB_COMMENTS, FB_FIELDS) | JSON.filter(lambda v: isinstance(v, dict)))
@example(item={"message": "hola", "created_time": "2021-07-04T19:50:58+0000",
               "permalink_url": "https://www.facebook.com/1/posts"})  # fmt: skip
@example(item={"id": "1_2", "message": "hola", "created_time": "2021-07-04T19:50:58+0000", "parent": {"id": 5}})
def test_graph_comment_parser_returns_a_well_formed_post_or_a_value_error(item: dict[str, Any]) -> None:
    post = parse_or_value_error(lambda: GraphItems(PAGE).comment(item, post_id=f"{PAGE}_1"), "facebook")
    if post is not None:
        assert post.in_reply_to_external_id  # a comment always answers something


@FUZZ
@given(
    item=mutated(FB_MESSAGES, FB_FIELDS) | JSON.filter(lambda v: isinstance(v, dict)),
    conversation=mutated(FB_CONVERSATIONS, ("id", "link", "updated_time")),
)
def test_graph_message_parser_returns_a_well_formed_post_or_a_value_error(
    item: dict[str, Any], conversation: dict[str, Any]
) -> None:
    post = parse_or_value_error(lambda: GraphItems(PAGE).message(item, conversation=conversation), "facebook")
    if post is not None:
        assert post.is_public is False
        assert post.url is None or post.url.startswith("https://www.facebook.com/")


@FUZZ
@given(permalink=JSON | hst.sampled_from(NASTY) | hst.builds(
    lambda path, query: f"https://www.facebook.com/{path}?{query}",
    hst.text(alphabet="/posts0123456789", max_size=20),
    hst.text(alphabet="comment_id=reply&0123456789", max_size=40),
))  # fmt: skip
def test_permalink_ids_are_a_pair_of_texts_or_none(permalink: Any) -> None:
    ids = ids_from_permalink(permalink)
    if ids is not None:
        comment, parent = ids
        assert isinstance(comment, str) and comment and (parent is None or isinstance(parent, str))


@FUZZ
@given(value=JSON)
@example(value="0001-01-01T00:00:00+1400")
@example(value="9999-12-31T23:59:59-1400")
def test_graph_time_parser_gives_an_aware_time_or_a_value_error(value: Any) -> None:
    try:
        parsed = parse_graph_time(value)
    except ValueError:
        return
    assert parsed.utcoffset() == timedelta(0)


# --- Facebook: whole responses through the real facebook-sdk client --------------------------------


def good_fb_post(n: int) -> dict[str, Any]:
    return {"id": f"{PAGE}_{900 + n}", "message": f"good post {n}", "created_time": "2026-02-01T10:00:00+0000",
            "updated_time": "2026-02-01T10:00:00+0000", "from": {"id": "77", "name": "Visitante"}}  # fmt: skip


def good_fb_comment(n: int) -> dict[str, Any]:
    return {"id": f"900_{500 + n}", "message": f"good comment {n}", "created_time": "2026-02-01T10:05:00+0000",
            "from": {"id": "77", "name": "Visitante"}}  # fmt: skip


def good_fb_message(n: int) -> dict[str, Any]:
    return {"id": f"m_good_{n}", "message": f"good message {n}", "created_time": "2026-02-01T10:05:00+0000",
            "from": {"id": "88", "name": "Cliente"}}  # fmt: skip


GOOD_CONVERSATION = {"id": "t_good", "link": f"/{PAGE}/inbox/1/", "updated_time": "2026-02-01T10:06:00+0000"}
FB_EXTRA = {"paging": {"cursors": {"after": "QVFI"}}}
USAGE = hst.dictionaries(
    hst.sampled_from(["x-app-usage", "x-page-usage", "x-business-use-case-usage"]),
    JSON.map(lambda v: json.dumps(v)) | hst.sampled_from([
        '{"call_count": 96, "total_time": 1, "total_cputime": 1}',
        '{"call_count": Infinity}',
        '{"call_count": 99, "estimated_time_to_regain_access": 1e300}',
        '{"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 99999999999999}]}',
        '{"1": [{"call_count": "12"}], "2": "x"}',
        "not json",
    ]),
    max_size=2,
)  # fmt: skip


@FUZZ
@given(data=hst.data(), source=hst.sampled_from(["feed", "messages"]))
def test_graph_listeners_keep_every_good_item_whatever_else_the_response_holds(
    data: hst.DataObject, source: str
) -> None:
    n_good = data.draw(hst.integers(min_value=0, max_value=2))
    if source == "feed":
        goods = {"feed": [good_fb_post(n) for n in range(n_good)],
                 "comments": [good_fb_comment(n) for n in range(n_good)]}  # fmt: skip
        junk = {"feed": mutated(FB_POSTS, FB_FIELDS) | JSON, "comments": mutated(FB_COMMENTS, FB_FIELDS) | JSON}
    else:
        goods = {"conversations": [GOOD_CONVERSATION] if n_good else [],
                 "messages": [good_fb_message(n) for n in range(n_good)]}  # fmt: skip
        junk = {"conversations": mutated(FB_CONVERSATIONS, ("id", "link", "updated_time")) | JSON,
                "messages": mutated(FB_MESSAGES, FB_FIELDS) | JSON}  # fmt: skip
    edges = {edge: data.draw(page_body(goods[edge], junk[edge], FB_EXTRA)) for edge in goods}
    raw = {edge: _encode(data.draw, body) for edge, body in edges.items()}
    content_type = data.draw(hst.sampled_from([JSON_TYPE] * 8 + ["text/html", ""]))
    usage = data.draw(USAGE)

    def answer(method: str, url: str) -> Canned:
        edge = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        headers = {"content-type": content_type, **usage} if content_type else dict(usage)
        return 200, headers, raw.get(edge, b'{"data": []}')

    session = CannedSession(answer)
    graph = make_graph(Settings(_env_file=None, facebook_page_token="t"), session)
    listener_type = FacebookFeedListener if source == "feed" else FacebookMessagesListener
    listener = listener_type(graph, page_id=PAGE, max_pages=2)
    result = fetch_or_clear_error(listener)
    if result is None:
        return
    for post in result.posts:
        assert_well_formed(post, "facebook")
    intact = content_type == JSON_TYPE and all(
        raw[e] == json.dumps(edges[e]).encode() and _holds(edges[e], goods[e]) for e in edges
    )
    if intact and n_good:
        kept = {p.external_id for p in result.posts}
        wanted = (
            {good_fb_post(n)["id"] for n in range(n_good)} | {good_fb_comment(n)["id"] for n in range(n_good)}
            if source == "feed"
            else {good_fb_message(n)["id"] for n in range(n_good)}
        )
        assert wanted <= kept, result.skipped


# --- http.py: Graph usage and X rate-limit headers --------------------------------------------------


@FUZZ
@given(headers=USAGE)
@example(headers={"x-app-usage": '{"call_count": Infinity}'})
@example(headers={"x-app-usage": '{"call_count": 99, "estimated_time_to_regain_access": 1e300}'})
def test_graph_usage_headers_give_a_bounded_quota_or_none(headers: dict[str, str]) -> None:
    now = 1_800_000_000.0
    usage = graph_usage(headers, now=now)
    if usage is None:
        return
    assert isinstance(usage, GraphUsage) and usage.limit == 100 and 0 <= usage.remaining <= 100
    assert isinstance(usage.used, int) and isinstance(usage.reset, int)
    assert now < usage.reset <= now + MAX_PAUSE
    assert usage.exhausted == (usage.used >= 95 and usage.reset > time.time())


@FUZZ
@given(headers=RATE_HEADERS)
def test_x_rate_limit_headers_are_recorded_only_when_they_make_sense(headers: dict[str, str]) -> None:
    session = CannedSession(lambda method, url: (200, {"content-type": JSON_TYPE, **headers}, b"{}"))
    session.request("GET", "https://api.twitter.com/2/users/1/mentions")
    assert_sane_quota(session.rate_limits)


def test_real_rate_limit_headers_are_still_recorded() -> None:
    reset = int(time.time()) + 900
    x = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    session = CannedSession(lambda method, url: (200, {"content-type": JSON_TYPE, **x}, b"{}"))
    session.request("GET", "https://api.twitter.com/2/users/1/mentions")
    assert session.rate_limits == {"/2/users/1/mentions": RateLimit(limit=450, remaining=0, reset=reset)}
    usage = graph_usage({"x-app-usage": '{"call_count": 96, "total_time": 10, "total_cputime": 5}'})
    assert usage is not None and usage.used == 96 and usage.remaining == 0 and usage.exhausted


# --- the sandbox's helpers and its request parsing --------------------------------------------------


@FUZZ
@given(text=hst.text())
def test_sandbox_page_tokens_round_trip(text: str) -> None:
    try:
        token = b64(text)
    except UnicodeEncodeError:
        return  # a lone surrogate has no UTF-8 form: the sandbox never makes such a token
    assert unb64(token) == text


@FUZZ
@given(token=hst.text(max_size=40) | hst.sampled_from(NASTY))
def test_sandbox_reads_any_page_token_as_text(token: str) -> None:
    assert isinstance(unb64(token), str)


@FUZZ
@given(value=hst.text(max_size=40) | hst.sampled_from([*NASTY, "1e999", "-1e999", "nan", "inf"]))
def test_sandbox_times_are_finite_or_none(value: str) -> None:
    parsed = unix_or_iso(value)
    assert parsed is None or math.isfinite(parsed)


@FUZZ
@given(param=hst.none() | hst.text(alphabet=string.ascii_letters + ",.{}()_ ", max_size=40) | hst.text(max_size=20))
def test_sandbox_field_lists_are_names(param: str | None) -> None:
    names = fields(param, ("created_time", "message"))
    assert all(isinstance(n, str) and n and n == n.strip() for n in names)
    assert names == {"created_time", "message"} if not param else "id" in names


@FUZZ
@given(value=hst.text(max_size=30) | hst.sampled_from(NASTY))
def test_sandbox_graph_time_is_a_time_or_a_value_error(value: str) -> None:
    try:
        parsed = sandbox_graph_time(value)
    except ValueError:
        return
    assert parsed.utcoffset() is not None


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # Not started: ``handle`` answers a request the way the server thread would.
    yield Sandbox()


SANDBOX_ROUTES = [
    ("POST", "/2/tweets"),
    ("POST", "/2/dm_conversations/with/42/messages"),
    ("GET", "/2/users/1072250532645998596/mentions"),
    ("GET", "/2/tweets/search/recent"),
    ("GET", "/2/dm_events"),
    ("GET", "/v21.0/102030405060708/feed"),
    ("GET", "/v21.0/102030405060708/conversations"),
    ("POST", "/v21.0/me/messages"),
    ("POST", "/v21.0/102030405060708_1/comments"),
    ("POST", "/_sandbox/add_mention"),
    ("POST", "/_sandbox/add_fb_comment"),
]


@FUZZ
@given(
    route=hst.sampled_from(SANDBOX_ROUTES),
    query=hst.dictionaries(hst.sampled_from(["max_results", "since_id", "until_id", "pagination_token", "fields",
                                             "limit", "after", "since", "until", "start_time", "recipient", "message",
                                             "access_token", "query"]),
                           hst.sampled_from([*NASTY[:4], *NASTY[5:9], "0", "-5", "abc", "{}", '{"id": 1}'])
                           | hst.text(alphabet=hst.characters(codec="utf-8"), max_size=12), max_size=4),
    body=JSON.map(lambda v: json.dumps(v).encode()) | hst.binary(max_size=40),
)  # fmt: skip
def test_the_sandbox_answers_any_request_without_a_server_error(
    sandbox: Sandbox, route: tuple[str, str], query: dict[str, str], body: bytes
) -> None:
    method, path = route
    headers = {"authorization": "Bearer sandbox-x-token", "content-type": "application/json"}
    if path.startswith("/2/") and method == "POST":
        headers["authorization"] = 'OAuth oauth_token="sandbox-x-token"'
    query = {"access_token": "sandbox-fb-token", **query}
    status, _headers, payload = sandbox.handle(method, f"{path}?{urlencode(query)}", headers, body)
    assert isinstance(status, int) and 200 <= status < 500, payload[:300]
    json.loads(payload)


@pytest.mark.parametrize("name", ["max_results", "since_id", "until_id", "pagination_token"])
@pytest.mark.parametrize("value", ["9" * 5000, "²", "١٢٣"])
@pytest.mark.parametrize("route", ["/2/users/1072250532645998596/mentions", "/2/tweets/search/recent"])
def test_the_x_sandbox_refuses_numbers_x_would_not_read(sandbox: Sandbox, route: str, name: str, value: str) -> None:
    """Digits beyond Python's 4,300 for ``int()``, or digits that are not ASCII, are a 400 or ignored: never a 500."""
    query = {"query": "escucha", name: value}
    headers = {"authorization": "Bearer sandbox-x-token"}
    status, _headers, payload = sandbox.handle("GET", f"{route}?{urlencode(query)}", headers, b"")
    assert status in (200, 400), (status, payload[:300])
    assert (status == 400) == (name == "max_results"), payload[:300]


@pytest.mark.parametrize("value", ["9" * 5000, "²"])
@pytest.mark.parametrize("route", ["/v21.0/102030405060708/feed", "/v21.0/102030405060708/conversations"])
def test_the_graph_sandbox_reads_a_limit_it_cannot_use_as_its_default(sandbox: Sandbox, route: str, value: str) -> None:
    """A ``limit`` of 5,000 digits (a saved hypothesis example: a 500) or of non-ASCII digits pages by 25."""
    query = urlencode({"access_token": "sandbox-fb-token", "limit": value})
    status, _headers, payload = sandbox.handle("GET", f"{route}?{query}", {}, b"")
    assert status == 200, payload[:300]


# --- settings ---------------------------------------------------------------------------------------

# The app's settings and every network's, as the keywords a person gives (x_page_size=…).
SETTING_NAMES = sorted(
    [name for name, info in Settings.model_fields.items() if info.annotation is not None and name != "data_dir"]
    + [f"{spec.name}_{name}" for spec in NETWORKS.values() for name in spec.settings.model_fields]
)


@FUZZ
@given(values=hst.dictionaries(hst.sampled_from(SETTING_NAMES), JSON | NUMBERS.map(str) | hst.sampled_from(
    ["v21.0", "v3", "../../v1", "1e999", "inf", "-0", "true", "changeme", " token "]), max_size=3))  # fmt: skip
def test_settings_are_valid_or_refused_with_a_validation_error(values: dict[str, Any]) -> None:
    try:
        made = Settings(_env_file=None, **values)
        parts: list[Any] = [made, *(spec.settings_of(made) for spec in NETWORKS.values())]
    except ValidationError:
        return
    for part in parts:
        for name in type(part).model_fields:
            value = getattr(part, name)
            if isinstance(value, float):
                assert math.isfinite(value), name
            if name.endswith("_seconds") and value is not None:
                utcnow() + timedelta(seconds=value)  # every interval and timeout can be scheduled
    graph_version = FacebookSettings.of(made).graph_version
    assert graph_version.startswith("v") and "/" not in graph_version


@pytest.mark.parametrize("value", ["inf", "1e999", "nan"])
def test_an_endless_poll_interval_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        XSettings.of(Settings(_env_file=None, x_poll_seconds=value))


# --- escucha score: JSON lines ------------------------------------------------------------------------

LINE = (
    JSON.map(json.dumps)
    | hst.builds(lambda extra: json.dumps({"id": 1, "text": "mi pedido no llega", **extra}),
                 hst.dictionaries(hst.sampled_from(["id", "text", "is_dm", "followers_count", "waiting_s"]),
                                  JSON | NUMBERS, max_size=3))
    | hst.text(max_size=40)
)  # fmt: skip


@FUZZ
@given(line=LINE)
@example(line='{"id": 1, "text": "x", "followers_count": Infinity}')
@example(line='{"id": 1, "text": "x", "waiting_s": 1e999}')
@example(line='{"id": 1, "text": "x", "waiting_s": ' + "9" * 400 + "}")
def test_score_lines_parse_or_carry_an_error(line: str) -> None:
    _id, obj, error = parse_line(line)
    assert (obj is None) != (error is None)
    if error is not None:
        assert isinstance(error, str) and error
    else:
        assert isinstance(obj, dict) and isinstance(obj["text"], str)


@settings(max_examples=20, deadline=None)
@given(lines=hst.lists(LINE, min_size=1, max_size=8))
@example(lines=['{"id": {"\u0085": null}, "text": "x"}'])
def test_score_stream_answers_every_line_and_scores_the_good_ones(lines: list[str]) -> None:
    good = json.dumps({"id": "good", "text": "my order never arrived, terrible"})
    lines = [*lines, good]
    out = io.StringIO()
    errors = score_stream(LexiconScorer(), iter(ln.replace("\n", " ") + "\n" for ln in lines), out, batch=3)
    # JSON Lines end at "\n" only: ``splitlines`` would also cut at a U+0085 or U+2028 inside a text.
    rows = [json.loads(r) for r in out.getvalue().split("\n") if r]
    assert len(rows) == len([ln for ln in lines if ln.replace("\n", " ").strip()])
    assert errors == sum("error" in r for r in rows)
    assert rows[-1]["id"] == "good" and rows[-1]["sentiment"] == "negative"


# --- classifier/train.py: read_tsv ---------------------------------------------------------------------


@FUZZ
@given(
    content=hst.binary(max_size=200)
    | hst.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))
    | hst.lists(
        hst.tuples(
            hst.sampled_from(["negative", "neutral", "positive", "x", ""]),
            hst.text(max_size=30) | hst.sampled_from(NASTY[:9]),
        ),
        max_size=4,
    ).map(lambda rows: ("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in rows)).encode("utf-8", "surrogatepass"))
)
@example(content=b"")
@example(content=("label\ttext\nnegative\t" + "x" * 200_000 + "\n").encode())
def test_read_tsv_gives_rows_of_text_or_a_value_error(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("tsv")) / "in.tsv"
    path.write_bytes(content)
    try:
        rows = read_tsv(path)
    except ValueError:
        return
    for row in rows:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in row.items())


# --- small parsers on the way out and back in ---------------------------------------------------------


@FUZZ
@given(text=hst.text(max_size=40) | hst.sampled_from(["5", " 5/5 ", "3.", "0", "6", "٣", "５", "4\x00", "10"]))
def test_satisfaction_answers_are_one_to_five_or_none(text: str) -> None:
    rating = parse_rating(text)
    assert rating is None or (isinstance(rating, int) and 1 <= rating <= 5)


@FUZZ
@given(value=hst.text(max_size=60))
def test_codes_parse_into_trimmed_lowercase_names(value: str) -> None:
    codes = parse_codes(value)
    assert all(c and c == c.strip().lower() and "," not in c for c in codes)


@FUZZ
@given(text=hst.text(max_size=400) | hst.sampled_from(NASTY))
def test_x_weighted_length_and_truncation_never_crash_and_fit(text: str) -> None:
    assert weighted_length(text) >= 0
    assert weighted_length(truncate_x(text)) <= X_MAX_WEIGHT


# --- parsed posts store on both backends ----------------------------------------------------------------

_batch = iter(range(10**9))


def _parse_for_store(network: str, item: dict[str, Any], batch: int, user_index: dict[str, Any]) -> IncomingPost | None:
    item = dict(item)
    if isinstance(item.get("id"), str):
        # A fresh id per example (the database outlives examples), keeping whatever junk the id holds.
        item["id"] = f"{batch:09d}{item['id']}" if network == "x" else f"{batch}_{item['id']}"
    if network == "x":
        return parse_or_value_error(
            lambda: XTweets(brand_user_id=BRAND, brand_username="EscuchaHelp").tweet(
                item, kind="mention", source="mentions", users=user_index, included={}
            ),
            "x",
        )
    return parse_or_value_error(lambda: GraphItems(PAGE).comment(item, post_id=f"{PAGE}_{batch}"), "facebook")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])  # fmt: skip
@given(data=hst.data(), network=hst.sampled_from(["x", "facebook"]))
def test_whatever_the_parsers_accept_is_stored_exactly_once_beside_a_good_post(
    session: Session, data: hst.DataObject, network: str
) -> None:
    batch = next(_batch)
    templates = (TWEETS, TWEET_FIELDS) if network == "x" else (FB_COMMENTS, FB_FIELDS)
    items = data.draw(hst.lists(mutated(*templates), min_size=1, max_size=5))
    user_index, _ = _x_index(data.draw(hst.lists(mutated(USERS, USER_FIELDS), max_size=3)), [])
    good = good_tweet(0) if network == "x" else good_fb_comment(0)
    posts = [p for item in [good, *items] if (p := _parse_for_store(network, item, batch, user_index)) is not None]
    assert posts and posts[0].text.startswith(("@EscuchaHelp good", "good comment"))

    def counts() -> dict[str, int]:
        return {
            post.external_id: session.execute(
                select(func.count())
                .select_from(Post)
                .where(col(Post.network) == network, col(Post.external_id) == post.external_id)
            ).scalar_one()
            for post in posts
            if "\x00" not in post.external_id  # such an id cannot even be looked up on PostgreSQL
        }

    before = counts()  # an id derived from a recorded permalink may be there from an earlier example
    notes: list[str] = []
    stored = save_posts(session, posts, notes=notes)
    session.commit()
    after = counts()
    assert after[posts[0].external_id] == 1  # the good post is never lost to its neighbours
    for post in posts:
        if after.get(post.external_id, 0) == 0:
            assert any(repr(post.external_id[:40]) in note for note in notes), (post.external_id, notes)
        else:
            assert after[post.external_id] == 1
    assert stored.inserted == len({i for i, n in after.items() if n == 1 and before[i] == 0})
