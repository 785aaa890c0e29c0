"""Fuzzing Instagram's payload parsers: recorded responses mutated field by field, and arbitrary JSON.

As for the other networks (``tests/networks/test_fuzz_payloads.py``): an item parses into a well-formed post or
raises ``ValueError``; a whole response gives a result or a ``ListenerError``, and a bad item never costs the
good items beside it; a webhook delivery gives a batch or ``WebhookRefused``; the sandbox's Instagram face
answers anything without a server error.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from requests.structures import CaseInsensitiveDict

from models.store import post_row
from models.tables import utcnow
from networks.base import FetchResult, IncomingPost, ListenerError, RateLimited, WebhookBatch, WebhookRefused
from networks.http import RewritingSession
from networks.instagram.adapter import (
    IgItems,
    InstagramCommentsListener,
    InstagramMentionsListener,
    InstagramMessagesListener,
    make_graph,
    parse_ig_time,
)
from networks.instagram.settings import InstagramSettings
from networks.instagram.text import IG_MESSAGE_LIMIT, fit_instagram
from networks.instagram.webhook import parse_delivery
from sandbox.server import Sandbox
from tests.support.paths import FIXTURES

IG = "17841406338772941"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NASTY = ["", " ", "\x00", "\ud83d", "\u202eevil\u202c", "<script>alert(1)</script>", "9" * 5000, "queja " * 20_000,
         "-1", "1e999", "NaN", "0001-01-01T00:00:00+1400", "9999-12-31T23:59:59-1400", "2021-08-13T08:25:28+0000",
         "2026-02-30T10:00:00+0000", "../../me", "a/b?c=d", "javascript:alert(1)"]  # fmt: skip
SCALARS = (
    hst.none()
    | hst.booleans()
    | hst.integers(min_value=-(2**70), max_value=2**70)
    | hst.floats()
    | hst.text(max_size=24)
    | hst.sampled_from(NASTY)
)
KEYS = hst.sampled_from(
    ["id", "text", "caption", "message", "timestamp", "created_time", "from", "username", "parent_id", "data",
     "paging", "replies", "media", "comments_count", "updated_time"]
) | hst.text(max_size=8)  # fmt: skip
JSON = hst.recursive(
    SCALARS, lambda inner: hst.lists(inner, max_size=4) | hst.dictionaries(KEYS, inner, max_size=4), max_leaves=10
)


def _recorded(name: str) -> Any:
    return json.loads((FIXTURES / "instagram" / "graph-api" / name).read_text(encoding="utf-8"))


MEDIA = [*_recorded("users/medias_p1.json")["data"], *_recorded("users/tagged_medias.json")["data"]]
COMMENTS = [*_recorded("medias/comments_p1.json")["data"], *_recorded("comments/comments_fields.json").values(),
            *_recorded("comments/replies.json")["data"]]  # fmt: skip
MESSAGES = [{"id": "aWdfZAG1faXRlbToxOklH", "message": "hola", "created_time": "2026-02-01T10:05:00+0000",
             "from": {"id": "6001", "username": "ana"}, "to": {"data": [{"id": IG, "username": "marca"}]}}]  # fmt: skip


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, dict | list)]
    return [v for v in value if isinstance(v, dict | list)] if isinstance(value, list) else []


@hst.composite
def mutated(draw: hst.DrawFn, templates: list[Any]) -> Any:
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
            key = draw(hst.sampled_from(sorted({*target, "id", "text", "timestamp", "from", "parent_id"})))
            if key in target and draw(hst.booleans()):
                del target[key]
            else:
                target[key] = draw(JSON)
        elif isinstance(target, list):
            target.append(draw(JSON))
    return item


def assert_well_formed(post: Any) -> None:
    """Every field has the type the store and the desk rely on, and the store can make a row of it."""
    assert isinstance(post, IncomingPost) and post.network == "instagram"
    assert isinstance(post.external_id, str) and post.external_id.strip()
    assert isinstance(post.text, str) and isinstance(post.created_at, datetime)
    post.created_at.astimezone(UTC)
    for value in (post.conversation_id, post.in_reply_to_external_id, post.url):
        assert value is None or isinstance(value, str)
    if post.author is not None:
        assert isinstance(post.author.external_id, str) and post.author.external_id
        assert isinstance(post.author.username, str)
    row, _ = post_row(post, author_id=None, now=utcnow())
    assert row is None or isinstance(row["text"], str)


def parsed_or_value_error(parse: Callable[[], Any]) -> None:
    try:
        post = parse()
    except ValueError:
        return
    assert_well_formed(post)


ITEMS = IgItems(IG, "marca")


@FUZZ
@given(item=mutated(MEDIA) | JSON)
def test_media_and_mentions_parse_or_raise_a_value_error(item: Any) -> None:
    item = item if isinstance(item, dict) else {"junk": item}
    parsed_or_value_error(lambda: ITEMS.media(item))
    parsed_or_value_error(lambda: ITEMS.mention(item))


@FUZZ
@given(item=mutated(COMMENTS) | JSON, media=hst.sampled_from(["17846368219941692", "x/../y", ""]))
def test_comments_parse_or_raise_a_value_error(item: Any, media: str) -> None:
    item = item if isinstance(item, dict) else {"junk": item}
    parsed_or_value_error(lambda: ITEMS.comment(item, media_id=media))
    parsed_or_value_error(lambda: ITEMS.mention(item, media_id=media))


@FUZZ
@given(item=mutated(MESSAGES) | JSON)
def test_messages_parse_or_raise_a_value_error(item: Any) -> None:
    item = item if isinstance(item, dict) else {"junk": item}
    parsed_or_value_error(lambda: ITEMS.message(item, conversation_id="aWdf"))


@FUZZ
@given(value=JSON)
def test_times_parse_to_aware_utc_or_a_value_error(value: Any) -> None:
    try:
        at = parse_ig_time(value)
    except ValueError:
        return
    assert at.utcoffset() is not None and at.tzinfo == UTC


# --- whole responses through the real facebook-sdk client ------------------------------------------

Canned = tuple[int, dict[str, str], bytes]
JSON_TYPE = "application/json; charset=utf-8"


class CannedSession(RewritingSession):
    """The clients' session type, answering from ``answer(method, url)``; response hooks run as for real."""

    def __init__(self, answer: Callable[[str, str], Canned]) -> None:
        super().__init__(None)
        self.answer = answer

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        status, headers, body = self.answer(str(method), str(url))
        response = requests.Response()
        response.status_code, response.reason = status, "canned"
        response.headers = CaseInsensitiveDict(headers)
        response._content = body
        response._content_consumed = True  # type: ignore[attr-defined]
        response.url, response.encoding = str(url), "utf-8"
        requests.hooks.dispatch_hook("response", self.hooks, response)
        return response


def good(edge: str, n: int) -> dict[str, Any]:
    at = "2026-02-01T10:05:00+0000"
    if edge in ("media", "tags"):
        return {"id": f"1790000000000{n}", "caption": f"good {n}", "timestamp": at, "comments_count": 1}
    if edge == "comments":
        return {"id": f"1780000000000{n}", "text": f"good comment {n}", "timestamp": at,
                "from": {"id": "6001", "username": "ana"}}  # fmt: skip
    if edge == "conversations":
        return {"id": f"aWdfconv{n}", "updated_time": at}
    return {"id": f"aWdfmsg{n}", "message": f"good dm {n}", "created_time": at, "from": {"id": "6001"}}


USAGE = hst.dictionaries(
    hst.just("x-business-use-case-usage"),
    JSON.map(json.dumps) | hst.sampled_from([
        '{"1": [{"type": "instagram", "call_count": 96, "total_time": 1, "total_cputime": 1}]}',
        '{"1": [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 99999999999}]}',
        '{"1": [{"call_count": Infinity}]}', "not json",
    ]),
    max_size=1,
)  # fmt: skip


@FUZZ
@given(data=hst.data(), source=hst.sampled_from(["comments", "mentions", "messages"]))
def test_listeners_keep_every_good_item_whatever_else_the_response_holds(data: hst.DataObject, source: str) -> None:
    edges = {"comments": ["media", "comments"], "mentions": ["tags"], "messages": ["conversations", "messages"]}[source]
    n_good = data.draw(hst.integers(min_value=0, max_value=2))
    junk = {"media": mutated(MEDIA), "tags": mutated(MEDIA), "comments": mutated(COMMENTS),
            "conversations": JSON, "messages": mutated(MESSAGES)}  # fmt: skip
    bodies: dict[str, Any] = {}
    for edge in edges:
        goods = [good(edge, n) for n in range(n_good)]
        if data.draw(hst.integers(min_value=0, max_value=9)) == 0:
            bodies[edge] = data.draw(JSON)
        else:
            extra = data.draw(hst.lists(junk[edge] | JSON, max_size=3))
            bodies[edge] = {"data": data.draw(hst.permutations([*goods, *extra]))}
    usage = data.draw(USAGE)
    status = data.draw(hst.sampled_from([200] * 6 + [400, 500]))

    def answer(method: str, url: str) -> Canned:
        path = url.split("?")[0].rstrip("/")
        edge = path.rsplit("/", 1)[-1]
        if edge.startswith("v21"):  # the multi-id count read: every listed media changed
            return 200, {"content-type": JSON_TYPE, **usage}, json.dumps(
                {good("media", n)["id"]: {"comments_count": 5} for n in range(n_good)}).encode()  # fmt: skip
        return status, {"content-type": JSON_TYPE, **usage}, json.dumps(bodies.get(edge, {"data": []})).encode()

    graph = make_graph(InstagramSettings(user_id=IG, page_id="1", token="t"), CannedSession(answer))
    kind: Any = {"comments": InstagramCommentsListener, "mentions": InstagramMentionsListener,
                 "messages": InstagramMessagesListener}[source]  # fmt: skip
    clock = {"clock": lambda: datetime(2026, 2, 2, tzinfo=UTC)} if source == "comments" else {}
    listener = kind(graph, user_id=IG, page_id="1", max_pages=2, **clock)
    try:
        result = listener.fetch(None, [])
    except RateLimited as exc:
        assert math.isfinite(exc.retry_after) and exc.retry_after > 0
        return
    except ListenerError:
        return
    assert isinstance(result, FetchResult)
    for post in result.posts:
        assert_well_formed(post)
    intact = status == 200 and all(
        isinstance(bodies[e], dict) and all(g in (bodies[e].get("data") or []) for g in
                                            [good(e, n) for n in range(n_good)]) for e in edges
    )  # fmt: skip
    if intact and n_good and source != "messages":
        wanted = {good(edges[-1], n)["id"] for n in range(n_good)}
        assert wanted <= {p.external_id for p in result.posts}, result.skipped


# --- webhooks, text rules, the sandbox's face -------------------------------------------------------


def _lookup(media_id: str, comment_id: str | None) -> IncomingPost:
    item = {"id": comment_id or media_id, "text": "@marca hola", "caption": "@marca",
            "timestamp": "2026-02-01T10:00:00+0000"}  # fmt: skip
    return ITEMS.mention(item, media_id=media_id if comment_id else None)


@FUZZ
@given(payload=JSON | hst.fixed_dictionaries({"object": hst.just("instagram"), "entry": hst.lists(
    hst.fixed_dictionaries({"id": hst.just(IG), "time": SCALARS, "changes": hst.lists(hst.fixed_dictionaries({
        "field": hst.sampled_from(["comments", "mentions", "messages", "story_insights"]), "value": JSON}),
        max_size=3), "messaging": JSON}), max_size=2)}))  # fmt: skip
def test_webhook_deliveries_give_a_batch_or_a_refusal(payload: Any) -> None:
    try:
        batch = parse_delivery(payload, user_id=IG, username="marca", lookup=_lookup)
    except WebhookRefused:
        return
    assert isinstance(batch, WebhookBatch)
    for post in batch.posts:
        assert_well_formed(post)


@FUZZ
@given(text=hst.text(max_size=3000) | hst.sampled_from(NASTY))
def test_drafts_fit_instagram_without_links(text: str) -> None:
    fitted = fit_instagram(text)
    assert len(fitted) <= IG_MESSAGE_LIMIT and "http://" not in fitted and "https://" not in fitted


ROUTES = [("GET", f"/v21.0/{Sandbox().ig_user_id}/media"), ("GET", f"/v21.0/{Sandbox().ig_user_id}/tags"),
          ("GET", f"/v21.0/{Sandbox().ig_user_id}"), ("POST", f"/v21.0/{Sandbox().ig_user_id}/messages"),
          ("POST", f"/v21.0/{Sandbox().ig_user_id}/mentions"), ("GET", "/v21.0/102030405060708/conversations"),
          ("POST", "/_sandbox/add_ig_comment"), ("POST", "/_sandbox/add_ig_message")]  # fmt: skip


@FUZZ
@given(
    route=hst.sampled_from(ROUTES),
    query=hst.dictionaries(hst.sampled_from(["fields", "limit", "after", "since", "until", "recipient", "message",
                                             "media_id", "comment_id", "platform", "user_id", "ids"]),
                           hst.sampled_from(["", "0", "-5", "abc", "{}", '{"comment_id": "1"}', '{"text": 1}',
                                             "instagram", "mentioned_media.media_id(1){id}", "{{{"])
                           | hst.text(max_size=12), max_size=4),
    body=JSON.map(lambda v: json.dumps(v).encode()) | hst.binary(max_size=40),
)  # fmt: skip
def test_the_sandbox_face_answers_any_request_without_a_server_error(
    route: tuple[str, str], query: dict[str, str], body: bytes
) -> None:
    sandbox = Sandbox()  # not started: ``handle`` answers the way the server thread would
    media = sandbox.add_ig_media("x")
    sandbox.add_ig_comment(media, "y")
    method, path = route
    query = {"access_token": "sandbox-fb-token", **query}
    status, _headers, payload = sandbox.handle(method, f"{path}?{urlencode(query)}",
                                               {"content-type": "application/json"}, body)  # fmt: skip
    assert 200 <= status < 500, payload[:300]
    json.loads(payload)
