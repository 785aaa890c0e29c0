"""The Facebook listeners and sender, through the real facebook-sdk client, against the sandbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ground.settings import Settings
from networks.base import AuthFailed, PermanentFailure, RateLimited, TemporaryFailure
from networks.facebook.adapter import FacebookFeedListener, FacebookMessagesListener, FacebookSender, make_graph
from networks.http import RewritingSession
from sandbox.server import Sandbox


def graph(sb: Sandbox, *, timeout: float = 5.0, **overrides: Any) -> Any:
    settings = Settings(**{**sb.settings_overrides(), **overrides})
    return make_graph(settings, RewritingSession(sb.url, timeout=timeout))


def feed(sb: Sandbox, **overrides: Any) -> FacebookFeedListener:
    return FacebookFeedListener(graph(sb, **overrides), page_id=sb.page_id)


def messages(sb: Sandbox) -> FacebookMessagesListener:
    return FacebookMessagesListener(graph(sb), page_id=sb.page_id)


def test_make_graph_sets_a_current_version(sandbox: Sandbox) -> None:
    g = graph(sandbox, facebook_graph_version="v23.0")
    assert g.version == "v23.0"
    assert g.get_object("me")["id"] == sandbox.page_id
    assert "GET /v23.0/me" in sandbox.requests


def test_feed_returns_posts_comments_and_replies_normalised(sandbox: Sandbox) -> None:
    earlier = sandbox.now() - timedelta(minutes=30)
    post = sandbox.add_fb_post("Nueva colección", at=earlier)
    visitor = sandbox.add_fb_post("¿Dónde está mi pedido?", author="Ana Pérez", at=earlier + timedelta(minutes=1))
    comment = sandbox.add_fb_comment(post, "¿Precio?", author="Luis", at=earlier + timedelta(minutes=2))
    reply = sandbox.add_fb_comment(
        comment, "Yo también quiero saber", author="Marta", at=earlier + timedelta(minutes=3)
    )
    own = sandbox.add_fb_comment(post, "Desde 19,99 €", author=None, at=earlier + timedelta(minutes=4))
    result = feed(sandbox).fetch(None, [])
    by_id = {p.external_id: p for p in result.posts}
    assert set(by_id) == {post, visitor, comment, reply, own}
    assert {k: by_id[k].kind for k in by_id} == {
        post: "page_post",
        visitor: "visitor_post",
        comment: "comment",
        reply: "comment",
        own: "own",
    }
    assert by_id[comment].in_reply_to_external_id == post
    assert by_id[reply].in_reply_to_external_id == comment
    assert by_id[reply].conversation_id == post
    visitor_author = by_id[visitor].author
    assert visitor_author is not None and visitor_author.display_name == "Ana Pérez"
    assert by_id[comment].text == "¿Precio?"
    assert by_id[comment].created_at == (earlier + timedelta(minutes=2)).replace(microsecond=0)
    assert "comment_id=" in str(by_id[comment].url)
    assert all(p.network == "facebook" and p.source == "feed" and p.is_public for p in result.posts)
    assert result.next_cursor == str(int((earlier + timedelta(minutes=4)).timestamp()))


def test_feed_cursor_finds_new_comments_on_old_posts(sandbox: Sandbox) -> None:
    start = sandbox.now() - timedelta(hours=2)
    old_post = sandbox.add_fb_post("Horario de verano", at=start)
    for i in range(3):
        sandbox.add_fb_post(f"post {i}", at=start + timedelta(minutes=10 + i))
    sandbox.add_fb_comment(old_post, "gracias", author="Ana", at=start + timedelta(minutes=20))
    listener = feed(sandbox)
    first = listener.fetch(None, [])
    assert len(first.posts) == 5
    new_comment = sandbox.add_fb_comment(old_post, "¿y los domingos?", author="Luis")
    new_post = sandbox.add_fb_post("Mi pedido llegó roto", author="Marta")
    second = listener.fetch(first.next_cursor, [])
    ids = {p.external_id for p in second.posts}
    assert {new_comment, new_post} <= ids
    # Only the boundary item (same second as the cursor) may come again; the store de-duplicates it.
    assert len(ids - {new_comment, new_post}) <= 1
    assert int(second.next_cursor or 0) > int(first.next_cursor or 0)


def test_feed_pages_through_after_cursors(sandbox: Sandbox) -> None:
    start = sandbox.now() - timedelta(hours=1)
    for i in range(7):
        sandbox.add_fb_post(f"p{i}", author="Visitante", at=start + timedelta(minutes=i))
    listener = FacebookFeedListener(graph(sandbox), page_id=sandbox.page_id, page_size=3, max_pages=5)
    cursor = str(int(start.timestamp()))
    result = listener.fetch(cursor, [])
    assert len([p for p in result.posts if p.kind == "visitor_post"]) == 7
    assert result.requests_made >= 3


def test_malformed_comment_is_skipped_with_reason(sandbox: Sandbox) -> None:
    post = sandbox.add_fb_post("hola")
    sandbox.add_fb_comment(post, "sin fecha", author="Ana", drop=("created_time",))
    good = sandbox.add_fb_comment(post, "bien", author="Luis")
    result = feed(sandbox).fetch(None, [])
    assert {p.external_id for p in result.posts} == {post, good}
    assert len(result.skipped) == 1 and "created_time" in result.skipped[0]


def test_messages_dedupe_by_seen_ids_and_page_messages_are_own(sandbox: Sandbox) -> None:
    a = sandbox.add_fb_message("Hola, ¿tienen envío gratis?", author="Ana")
    b = sandbox.add_fb_message("Mi código no funciona", author="Luis")
    listener = messages(sandbox)
    first = listener.fetch(None, [])
    assert {p.external_id for p in first.posts} == {a, b}
    post = next(p for p in first.posts if p.external_id == a)
    assert (post.kind, post.source, post.is_public) == ("dm", "messages", False)
    assert post.author is not None and post.author.display_name == "Ana"
    assert post.conversation_id is not None and post.conversation_id.startswith("t_")
    again = listener.fetch(first.next_cursor, first.seen_ids or [])
    assert again.posts == []
    FacebookSender(listener.graph).send_reply(
        external_id=a, kind="dm", author_external_id=post.author.external_id, text="¡Sí!", idempotency_key="k"
    )
    c = sandbox.add_fb_message("gracias", author="Ana")
    third = listener.fetch(again.next_cursor, again.seen_ids or [])
    assert sorted((p.kind, p.text) for p in third.posts) == [("dm", "gracias"), ("own", "¡Sí!")]
    assert c in {p.external_id for p in third.posts}


def test_bad_token_is_auth_failed(sandbox: Sandbox) -> None:
    listener = feed(sandbox, facebook_page_token="not-the-token")
    with pytest.raises(AuthFailed):
        listener.fetch(None, [])
    with pytest.raises(AuthFailed):
        listener.verify()


def test_verify_refuses_a_token_of_another_page(sandbox: Sandbox) -> None:
    feed(sandbox).verify()
    with pytest.raises(AuthFailed, match="not page"):
        FacebookFeedListener(graph(sandbox), page_id="999").verify()


def test_app_secret_proof_is_sent_when_configured() -> None:
    with Sandbox(fb_app_secret="s3cret") as sb:
        sb.add_fb_post("hola")
        assert len(feed(sb).fetch(None, []).posts) == 1
        with pytest.raises(TemporaryFailure, match="appsecret_proof"):
            feed(sb, facebook_app_secret=None).fetch(None, [])


def test_rate_limit_and_server_errors(sandbox: Sandbox) -> None:
    listener = feed(sandbox)
    sandbox.fail_next(status=429)
    with pytest.raises(RateLimited) as caught:
        listener.fetch(None, [])
    assert caught.value.retry_after > 0
    sandbox.fail_next(status=500)
    with pytest.raises(TemporaryFailure):
        listener.fetch(None, [])
    sandbox.malformed_next()
    with pytest.raises(TemporaryFailure):
        listener.fetch(None, [])
    sandbox.slow_next(seconds=1.0)
    slow = FacebookFeedListener(graph(sandbox, timeout=0.2), page_id=sandbox.page_id)
    with pytest.raises(TemporaryFailure, match="Timeout"):
        slow.fetch(None, [])


def test_send_comment_records_one_reply(sandbox: Sandbox) -> None:
    post = sandbox.add_fb_post("hola")
    comment = sandbox.add_fb_comment(post, "¿abren hoy?", author="Ana")
    sent = FacebookSender(graph(sandbox)).send_reply(
        external_id=comment, kind="comment", author_external_id=None, text="Sí, hasta las 21 h", idempotency_key="k"
    )
    assert len(sandbox.sent) == 1
    record = sandbox.sent[0]
    assert (record.network, record.kind, record.in_reply_to) == ("facebook", "comment", comment)
    assert sent.external_id == record.external_id
    # The page's reply shows up in the thread under the same top-level comment.
    replies = graph(sandbox).get_connections(comment, "comments")["data"]
    assert [r["id"] for r in replies] == [sent.external_id]


def test_messenger_reply_outside_24h_is_permanent(sandbox: Sandbox) -> None:
    message = sandbox.add_fb_message("hola", author="Ana")
    user = messages(sandbox).fetch(None, []).posts[0].author
    assert user is not None
    sandbox.advance(25 * 3600)
    with pytest.raises(PermanentFailure, match="allowed window"):
        FacebookSender(graph(sandbox)).send_reply(
            external_id=message, kind="dm", author_external_id=user.external_id, text="hola", idempotency_key="k"
        )
    assert sandbox.sent == []


@pytest.mark.parametrize(
    "good", ["123", "1234567890_98765", "t_100001", "m_ToF4-x_W9EdVQ", "m_mid.1457764197618:41d1$a"]
)
def test_real_graph_id_shapes_pass(good: str) -> None:
    from networks.facebook.adapter import graph_node, is_graph_id

    assert is_graph_id(good) and graph_node(good) == good


@pytest.mark.parametrize(
    "bad", ["", "../me/feed", "123/comments", "123?access_token=x", "1#x", "1&a=b", "1 2", "1%2F", "a..b"]
)
def test_ids_that_would_change_the_request_path_are_refused(bad: str) -> None:
    from networks.facebook.adapter import GraphItems, graph_node, is_graph_id

    assert not is_graph_id(bad)
    with pytest.raises(ValueError, match="Graph object id"):
        graph_node(bad)
    items = GraphItems("999")
    with pytest.raises(ValueError, match="valid id"):
        items.post({"id": bad, "created_time": "2026-01-01T00:00:00+0000", "message": "hola"})
    with pytest.raises(ValueError, match="valid id"):
        items.comment({"id": bad, "created_time": "2026-01-01T00:00:00+0000", "message": "hola"}, post_id="1_2")


def test_sender_refuses_a_hostile_target_for_good_and_sends_nothing(sandbox: Sandbox) -> None:
    sender = FacebookSender(graph(sandbox), page_id=sandbox.page_id)
    with pytest.raises(PermanentFailure, match="Graph object id"):
        sender.send_reply(external_id="1_2/../../me/feed", kind="comment", author_external_id=None, text="x",
                          idempotency_key="k")  # fmt: skip
    with pytest.raises(PermanentFailure, match="Graph object id"):
        sender.send_reply(external_id="m_1", kind="dm", author_external_id="123?x=1", text="x", idempotency_key="k")
    assert sandbox.sent == []


@pytest.mark.parametrize("kind", ["dm", "comment"])
def test_reply_lookup_ignores_an_identical_reply_sent_before_the_approval(sandbox: Sandbox, kind: str) -> None:
    from datetime import timedelta

    author: str | None = None
    if kind == "dm":
        target_id = sandbox.add_fb_message("¿Abren el domingo?", author="Ana")
        got = messages(sandbox).fetch(None, [])
        author = next(p.author.external_id for p in got.posts if p.external_id == target_id and p.author)
    else:
        target_id = sandbox.add_fb_comment(sandbox.add_fb_post("Horario de verano"), "¿Abren el domingo?", author="Ana")
    sender = FacebookSender(graph(sandbox), page_id=sandbox.page_id)
    target = {"external_id": target_id, "kind": kind, "text": "¡Sí, de 10 a 14!", "idempotency_key": "k1"}
    sent = sender.send_reply(author_external_id=author, **target)
    found = sender.find_reply(author_external_id=author, not_before=sandbox.now() - timedelta(minutes=5), **target)
    assert found is not None and found.external_id == sent.external_id
    # The same words approved later are another reply: the earlier message must not stand in for it.
    later = sandbox.now() + timedelta(minutes=10)
    assert sender.find_reply(author_external_id=author, not_before=later, **target) is None
