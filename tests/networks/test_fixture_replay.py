"""Real recorded X and Graph responses, replayed through the real clients into our listeners."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from networks.facebook.adapter import (
    FacebookFeedListener,
    FacebookMessagesListener,
    FacebookSender,
    ids_from_permalink,
)
from networks.x.adapter import XDMListener, XMentionsListener, XSearchListener, XSender, snowflake_time
from tests.support.replay import GRAPH, Replay, graph, twarc_page, x_client

Route = tuple[int, dict[str, str], bytes]


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Replay()
    yield server
    server.server.shutdown()
    server.server.server_close()


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
