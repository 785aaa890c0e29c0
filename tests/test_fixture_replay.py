"""Real recorded X and Graph responses, replayed through the real clients into our listeners."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from escucha.settings import Settings
from listeners.facebook import (
    FacebookFeedListener,
    FacebookMessagesListener,
    FacebookSender,
    ids_from_permalink,
    make_graph,
)
from listeners.http import RewritingSession
from listeners.x import XDMListener, XMentionsListener, XSearchListener, XSender, make_x_client, snowflake_time
from tests.conftest import FIXTURES

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures are missing")

CASSETTES = FIXTURES / "x" / "tweepy-cassettes"
TWARC = FIXTURES / "x" / "twarc-v2"
GRAPH = FIXTURES / "facebook" / "graph-api"
JSON_TYPE = "application/json; charset=utf-8"

Route = tuple[int, dict[str, str], bytes]


class Replay:
    """A loopback server answering each path with a recorded response (matching on method and path)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[str] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                path = urlsplit(self.path).path
                replay.seen.append(f"{self.command} {path}")
                status, headers, body = replay.routes.get(
                    (self.command, path), (200, {"content-type": JSON_TYPE}, b'{"data": []}')
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def json(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> None:
        self.routes[(method, path)] = (200, {"content-type": JSON_TYPE, **(headers or {})}, json.dumps(body).encode())

    def cassette(self, name: str, index: int = 0, path: str | None = None) -> Any:
        """Serve interaction ``index`` of a tweepy cassette (gzip+base64 body decoded) at its path."""
        interaction = yaml.safe_load((CASSETTES / name).read_text())["interactions"][index]
        raw = interaction["response"]["body"]["string"]
        body = json.loads(gzip.decompress(raw) if isinstance(raw, bytes) else raw)
        headers = {k: v[0] for k, v in interaction["response"]["headers"].items() if k.startswith("x-rate-limit")}
        method = interaction["request"]["method"]
        route = path or urlsplit(interaction["request"]["uri"]).path
        self.routes[(method, route)] = (
            interaction["response"]["status"]["code"],
            {"content-type": JSON_TYPE, **headers},
            json.dumps(body).encode(),
        )
        return body


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Replay()
    yield server
    server.server.shutdown()
    server.server.server_close()


def x_client(replay: Replay) -> Any:
    settings = Settings(
        x_bearer_token="recorded",
        x_consumer_key="k",
        x_consumer_secret="s",
        x_access_token="a",
        x_access_token_secret="b",
        sandbox_url=replay.url,
    )
    return make_x_client(settings, RewritingSession(replay.url))


def graph(replay: Replay) -> Any:
    settings = Settings(facebook_page_token="recorded", sandbox_url=replay.url)
    return make_graph(settings, RewritingSession(replay.url))


def twarc_page(name: str) -> dict[str, Any]:
    line = json.loads((TWARC / name).read_text().splitlines()[0])
    data = line["data"] if isinstance(line["data"], list) else [line["data"]]
    meta = {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
    return {"data": data, "includes": line.get("includes", {}), "meta": meta}


# ---------------------------------------------------------------- X
def test_recorded_mentions_cassette(replay: Replay) -> None:
    body = replay.cassette("test_client_get_users_mentions.yaml")
    listener = XMentionsListener(x_client(replay), brand_user_id="783214", brand_username="Twitter", max_pages=1)
    (result,) = list(listener.fetch_pages(None, [], {}))
    assert [p.external_id for p in result.posts] == [t["id"] for t in body["data"]]
    assert [p.text for p in result.posts] == [t["text"] for t in body["data"]]
    # The recording has a next_token: the run is unfinished, so the cursor waits and the page state
    # remembers the newest id to adopt and the token to resume from.
    assert result.next_cursor is None and result.paging is not None
    assert result.paging["newest"] == body["meta"]["newest_id"] == "1578516295611748353"
    assert result.paging["token"] == body["meta"]["next_token"]
    first = result.posts[0]
    # Recorded without tweet.fields: no author, and the time comes from the snowflake id.
    assert first.author is None and first.kind == "mention"
    assert first.created_at == snowflake_time(first.external_id)
    assert first.created_at.date().isoformat() == "2022-10-07"
    assert listener.client.session.rate_limits["/2/users/783214/mentions"].limit == 450
    assert replay.seen == ["GET /2/users/783214/mentions"]


def test_recorded_search_cassette_is_manual_only(replay: Replay) -> None:
    body = replay.cassette("test_client_search_recent_tweets.yaml")
    listener = XSearchListener(
        x_client(replay), query="Tweepy", brand_user_id="1072250532645998596", brand_username="TweepyDev", max_pages=1
    )
    (result,) = list(listener.fetch_pages(None, [], {}))
    assert len(result.posts) == body["meta"]["result_count"] == 10
    assert all(p.kind == "search" and p.manual_only for p in result.posts)
    assert result.paging is not None and result.paging["newest"] == "1578516068309794817"


def test_recorded_twarc_tweets_with_expansions(replay: Replay) -> None:
    page = twarc_page("quoted_edit.jsonl")
    replay.json("GET", "/2/users/337119125/mentions", page)
    listener = XMentionsListener(x_client(replay), brand_user_id="337119125", brand_username="wongmjane", max_pages=1)
    post = listener.fetch(None, []).posts[0]
    author = next(u for u in page["includes"]["users"] if u["id"] == "1494167419413094401")
    assert post.external_id == "1576995594388000768"
    assert post.created_at == datetime(2022, 10, 3, 18, 0, 23, tzinfo=UTC)
    assert post.in_reply_to_external_id == "1576994789110992896"
    assert post.conversation_id == "1576994789110992896"
    assert post.lang == "en"
    assert post.author is not None
    assert post.author.username == author["username"]
    assert post.author.followers_count == author["public_metrics"]["followers_count"]
    assert post.url == f"https://x.com/{author['username']}/status/1576995594388000768"


def test_recorded_twarc_quote_of_brand_is_answerable(replay: Replay) -> None:
    page = twarc_page("quoted_edit.jsonl")
    quoted = next(r["id"] for r in page["data"][0]["referenced_tweets"] if r["type"] == "quoted")
    quoted_author = next(t["author_id"] for t in page["includes"]["tweets"] if t["id"] == quoted)
    replay.json("GET", "/2/tweets/search/recent", page)
    listener = XSearchListener(
        x_client(replay), query="x", brand_user_id=quoted_author, brand_username="somebrand", max_pages=1
    )
    assert listener.fetch(None, []).posts[0].manual_only is False


def test_recorded_dm_events_without_sender_are_skipped(replay: Replay) -> None:
    # The DM cassette's conversation page was recorded with default fields (no sender_id).
    body = replay.cassette("test_manage_and_lookup_direct_messages.yaml", 4, path="/2/dm_events")
    result = XDMListener(x_client(replay), brand_user_id="1072250532645998596").fetch(None, [])
    assert result.posts == []
    assert len(result.skipped) == len(body["data"]) == 2
    assert all("sender_id" in s for s in result.skipped)
    assert result.seen_ids == [e["id"] for e in reversed(body["data"])]


def test_recorded_sends_and_get_me(replay: Replay) -> None:
    replay.cassette("test_client_create_and_delete_tweet.yaml", 0)
    replay.cassette("test_manage_and_lookup_direct_messages.yaml", 0)
    replay.cassette("test_client_get_me.yaml")
    client = x_client(replay)
    sender = XSender(client)
    tweet = sender.send_reply(external_id="1", kind="mention", author_external_id=None, text="t", idempotency_key="k")
    assert tweet.external_id == "1456012973835788293"
    dm = sender.send_reply(
        external_id="2", kind="dm", author_external_id="750362064426721281", text="t", idempotency_key="k"
    )
    assert dm.external_id == "1585800613253812228"
    assert dm.url is not None and "750362064426721281-1072250532645998596" in dm.url
    listener = XMentionsListener(client, brand_user_id=None, brand_username=None)
    listener.verify()
    assert (listener.tweets.brand_user_id, listener.tweets.brand_username) == ("1072250532645998596", "tweepydev")


# ---------------------------------------------------------------- Facebook
def test_recorded_feed_and_comments(replay: Replay) -> None:
    feed = json.loads((GRAPH / "posts" / "feed_fields_p1.json").read_text())
    comments = json.loads((GRAPH / "comments" / "comments_p1.json").read_text())
    first_post = feed["data"][0]["id"]
    replay.json("GET", "/v21.0/4/feed", feed)
    replay.json("GET", f"/v21.0/{first_post}/comments", comments)
    result = FacebookFeedListener(graph(replay), page_id="4", max_pages=1).fetch(None, [])
    posts = [p for p in result.posts if p.kind == "page_post"]
    assert [p.external_id for p in posts] == [item["id"] for item in feed["data"]]
    assert posts[0].text == "Happy July 4th! 🇺🇸"
    assert posts[0].created_at == datetime(2021, 7, 4, 19, 50, 58, tzinfo=UTC)
    got = [p for p in result.posts if p.kind == "comment"]
    assert len(got) == len(comments["data"]) == 10
    # The recording lacks comment ids; they are recovered from the permalinks.
    assert got[0].external_id == "10158407654328553_10158407835073553"
    assert got[0].in_reply_to_external_id == first_post
    reply = next(p for p in got if p.external_id == "10158407654328553_10158409983033553")
    assert reply.in_reply_to_external_id == "10158407654328553_10158407903973553"
    assert reply.text.startswith("Hi, please access the Instagram Help Center")
    assert result.skipped == []
    assert result.next_cursor == str(int(max(p.created_at for p in result.posts).timestamp()))


def test_permalink_ids_match_recorded_ids() -> None:
    recorded = json.loads((GRAPH / "comments" / "comments_info.json").read_text())
    for comment in recorded.values():
        assert ids_from_permalink(comment["permalink_url"]) == (comment["id"], None)


def test_recorded_messages(replay: Replay) -> None:
    conversation = json.loads((GRAPH / "conversations" / "cvs_info.json").read_text())
    recorded = json.loads((GRAPH / "messages" / "messages_info.json").read_text())
    replay.json("GET", "/v21.0/2121008874780932/conversations", {"data": [conversation]})
    replay.json("GET", f"/v21.0/{conversation['id']}/messages", {"data": list(recorded.values())})
    result = FacebookMessagesListener(graph(replay), page_id="2121008874780932").fetch(None, [])
    assert [p.external_id for p in result.posts] == list(recorded)
    post = result.posts[0]
    assert (post.kind, post.is_public, post.conversation_id) == ("dm", False, conversation["id"])
    assert post.author is not None and (post.author.external_id, post.author.display_name) == (
        "2711636948859886",
        "Kun Liu",
    )
    assert post.created_at == datetime(2021, 7, 23, 9, 50, 48, tzinfo=UTC)
    assert post.url == f"https://www.facebook.com{conversation['link']}"
    assert result.next_cursor == str(int(datetime(2021, 7, 23, 9, 28, 50, tzinfo=UTC).timestamp()))


def test_recorded_comment_creation(replay: Replay) -> None:
    created = json.loads((GRAPH / "comments" / "create_resp.json").read_text())
    replay.json("POST", "/v21.0/245778718206154/comments", created)
    sent = FacebookSender(graph(replay)).send_reply(
        external_id="245778718206154", kind="comment", author_external_id=None, text="hi", idempotency_key="k"
    )
    assert sent.external_id == created["id"]
