"""The X listeners and sender, through the real tweepy client, against the sandbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ground.settings import Settings
from networks.base import AuthFailed, PermanentFailure, RateLimited, TemporaryFailure
from networks.http import RewritingSession
from networks.registry import build_listeners, build_senders
from networks.x.adapter import XDMListener, XMentionsListener, XSearchListener, XSender, make_x_client, snowflake_time
from sandbox.server import Sandbox


def settings_for(sb: Sandbox, **overrides: Any) -> Settings:
    return Settings(**{**sb.settings_overrides(), **overrides})


def client(sb: Sandbox, *, timeout: float = 5.0, **overrides: Any) -> tuple[Any, RewritingSession]:
    session = RewritingSession(sb.url, timeout=timeout)
    return make_x_client(settings_for(sb, **overrides), session), session


def mentions(sb: Sandbox, **kwargs: Any) -> XMentionsListener:
    c, _ = client(sb)
    return XMentionsListener(c, brand_user_id=sb.brand_user_id, brand_username=sb.brand_username, **kwargs)


def test_mentions_page_with_since_id_and_return_exactly_the_new_ones(sandbox: Sandbox) -> None:
    ids = [sandbox.add_mention(f"queja {i}", author=f"user{i % 4}") for i in range(25)]
    listener = mentions(sandbox, page_size=5, max_pages=10)
    first = listener.fetch(None, [])
    assert [p.external_id for p in first.posts] == ids[::-1]
    assert first.requests_made == 5
    assert first.next_cursor == ids[-1]
    new = [sandbox.add_mention(f"nueva {i}") for i in range(3)]
    second = listener.fetch(first.next_cursor, [])
    assert sorted(p.external_id for p in second.posts) == sorted(new)
    assert second.next_cursor == new[-1]
    third = listener.fetch(second.next_cursor, [])
    assert third.posts == [] and third.next_cursor == new[-1]


def test_page_bound_is_reported_not_silent(sandbox: Sandbox) -> None:
    for i in range(12):
        sandbox.add_mention(f"m{i}")
    result = mentions(sandbox, page_size=5, max_pages=2).fetch(None, [])
    assert len(result.posts) == 10
    assert any("stopped after 2 pages" in s for s in result.skipped)


def test_mentions_are_normalised(sandbox: Sandbox) -> None:
    parent = sandbox.add_mention("¿abren el domingo?", author="ana_r", lang="es", followers=38000)
    reply = sandbox.add_mention("sigo esperando respuesta", author="ana_r", in_reply_to=parent)
    posts = {p.external_id: p for p in mentions(sandbox).fetch(None, []).posts}
    post = posts[reply]
    assert (post.network, post.kind, post.source, post.is_public) == ("x", "mention", "mentions", True)
    assert post.text == f"@{sandbox.brand_username} sigo esperando respuesta"
    assert post.author is not None and post.author.username == "ana_r" and post.author.followers_count == 38000
    assert post.in_reply_to_external_id == parent
    assert post.conversation_id == parent
    assert post.lang == "es"
    assert post.created_at.tzinfo is not None
    assert abs(post.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert post.url == f"https://x.com/ana_r/status/{reply}"
    assert post.raw["id"] == reply


def test_brand_tweets_are_own_not_work(sandbox: Sandbox) -> None:
    own = sandbox.add_brand_tweet(f"@{sandbox.brand_username} prueba interna")
    other = sandbox.add_mention("hola")
    kinds = {p.external_id: p.kind for p in mentions(sandbox).fetch(None, []).posts}
    assert kinds == {own: "own", other: "mention"}


def test_malformed_items_are_skipped_with_a_reason(sandbox: Sandbox) -> None:
    good = sandbox.add_mention("bien")
    bad = sandbox.add_mention("mal", extra={"created_at": "ayer por la tarde"})
    textless = sandbox.add_mention("sin texto", drop=("text",))
    result = mentions(sandbox).fetch(None, [])
    assert [p.external_id for p in result.posts] == [good]
    assert len(result.skipped) == 2
    assert any(bad in s and "ayer" in s for s in result.skipped)
    assert any(textless in s for s in result.skipped)


def test_search_hits_without_mention_or_quote_are_manual_only(sandbox: Sandbox) -> None:
    brand_tweet = sandbox.add_brand_tweet("Nueva tarifa")
    plain = sandbox.add_search_hit("la tarifa de escucha es carísima")
    mentioning = sandbox.add_search_hit(f"@{sandbox.brand_username} la tarifa es carísima")
    quoting = sandbox.add_search_hit("¿en serio?", quote_brand_tweet=brand_tweet)
    c, _ = client(sandbox)
    listener = XSearchListener(
        c, query="escucha", brand_user_id=sandbox.brand_user_id, brand_username=sandbox.brand_username
    )
    result = listener.fetch(None, [])
    flags = {p.external_id: (p.kind, p.manual_only) for p in result.posts}
    assert flags[plain] == ("search", True)
    # A hit that mentions the brand is a mention: the same kind the mentions source gives it, so the stored
    # post (whichever source reads it first) is always one the brand must answer.
    assert flags[mentioning] == ("mention", False)
    assert flags[quoting] == ("search", False)
    assert result.next_cursor == max(flags, key=int)
    via_mentions = {p.external_id: (p.kind, p.manual_only) for p in mentions(sandbox).fetch(None, []).posts}
    assert via_mentions[mentioning] == flags[mentioning]


def test_dms_dedupe_by_seen_ids_and_own_messages_are_marked(sandbox: Sandbox) -> None:
    first_ids = [sandbox.add_dm(f"dm {i}", author="carla") for i in range(3)]
    c, _ = client(sandbox)
    listener = XDMListener(c, brand_user_id=sandbox.brand_user_id, page_size=2)
    first = listener.fetch(None, [])
    assert sorted(p.external_id for p in first.posts) == sorted(first_ids)
    assert all(p.kind == "dm" and not p.is_public for p in first.posts)
    assert first.seen_ids is not None and first.seen_ids[-1] == first_ids[-1]
    assert first.next_cursor is None
    again = listener.fetch(None, first.seen_ids)
    assert again.posts == [] and again.requests_made == 1
    newer = sandbox.add_dm("otra cosa", author="carla")
    carla = first.posts[0].author
    assert carla is not None and carla.username == "carla"
    XSender(c).send_reply(
        external_id=newer, kind="dm", author_external_id=carla.external_id, text="Te ayudamos", idempotency_key="k1"
    )
    third = listener.fetch(None, again.seen_ids or [])
    assert {p.external_id: p.kind for p in third.posts}[newer] == "dm"
    assert sorted(p.kind for p in third.posts) == ["dm", "own"]


def test_bad_token_is_auth_failed(sandbox: Sandbox) -> None:
    c, _ = client(sandbox, x_bearer_token="wrong", x_access_token="wrong")
    listener = XMentionsListener(c, brand_user_id=sandbox.brand_user_id, brand_username=None)
    with pytest.raises(AuthFailed):
        listener.fetch(None, [])
    with pytest.raises(AuthFailed):
        listener.verify()


def test_verify_learns_the_brand_id(sandbox: Sandbox) -> None:
    c, _ = client(sandbox)
    listener = XMentionsListener(c, brand_user_id=None, brand_username=None)
    sandbox.add_mention("hola")
    assert len(listener.fetch(None, []).posts) == 1
    assert listener.tweets.brand_user_id == sandbox.brand_user_id


def test_429_is_rate_limited_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.fail_next(status=429, path_contains="/mentions", retry_after=120)
    with pytest.raises(RateLimited) as caught:
        mentions(sandbox).fetch(None, [])
    assert 100 < caught.value.retry_after <= 121


def test_server_errors_timeouts_and_bad_json_are_temporary(sandbox: Sandbox) -> None:
    listener = mentions(sandbox)
    sandbox.fail_next(status=500)
    with pytest.raises(TemporaryFailure, match="500"):
        listener.fetch(None, [])
    sandbox.malformed_next()
    with pytest.raises(TemporaryFailure):
        listener.fetch(None, [])
    c, _ = client(sandbox, timeout=0.2)
    sandbox.slow_next(seconds=1.0)
    slow = XMentionsListener(c, brand_user_id=sandbox.brand_user_id, brand_username=None)
    with pytest.raises(TemporaryFailure, match="Timeout"):
        slow.fetch(None, [])


def test_connection_refused_is_temporary() -> None:
    sb = Sandbox().start()
    url = sb.url
    sb.stop()
    session = RewritingSession(url, timeout=1)
    c = make_x_client(Settings(x_bearer_token="x", sandbox_url=url), session)
    with pytest.raises(TemporaryFailure):
        XMentionsListener(c, brand_user_id="1", brand_username=None).fetch(None, [])


def test_send_reply_records_exactly_one_reply(sandbox: Sandbox) -> None:
    mention = sandbox.add_mention("mi pedido no llega", author="luis")
    c, session = client(sandbox)
    sent = XSender(c).send_reply(
        external_id=mention, kind="mention", author_external_id=None, text="Lo revisamos ya", idempotency_key="k"
    )
    assert len(sandbox.sent) == 1
    record = sandbox.sent[0]
    assert (record.network, record.kind, record.in_reply_to, record.text) == ("x", "tweet", mention, "Lo revisamos ya")
    assert sent.external_id == record.external_id
    assert sent.url is not None and sent.external_id in sent.url
    assert session.rate_limits["/2/tweets"].limit == 200


def test_reply_to_unmentioned_search_hit_is_permanent_failure(sandbox: Sandbox) -> None:
    hit = sandbox.add_search_hit("escucha no funciona")
    c, _ = client(sandbox)
    with pytest.raises(PermanentFailure):
        XSender(c).send_reply(external_id=hit, kind="search", author_external_id=None, text="hola", idempotency_key="k")
    assert sandbox.sent == []


def test_session_records_rate_limits_per_endpoint(sandbox: Sandbox) -> None:
    c, session = client(sandbox)
    XMentionsListener(c, brand_user_id=sandbox.brand_user_id, brand_username=None).fetch(None, [])
    limit = session.rate_limits[f"/2/users/{sandbox.brand_user_id}/mentions"]
    assert (limit.limit, limit.remaining) == (450, 449)
    assert limit.reset > time.time()


def test_snowflake_time_matches_a_recorded_tweet() -> None:
    # 1578516295611748353 is in the mentions cassette, recorded on 2022-10-07 around 22:42 UTC.
    at = snowflake_time("1578516295611748353")
    assert at.date().isoformat() == "2022-10-07" and at.hour == 22


def test_registry_builds_what_settings_configure(sandbox: Sandbox) -> None:
    settings = settings_for(sandbox)
    sources = {(listener.network, listener.source) for listener in build_listeners(settings)}
    assert sources == {("x", "mentions"), ("x", "dms"), ("x", "search"), ("facebook", "feed"), ("facebook", "messages")}
    assert set(build_senders(settings)) == {"x", "facebook"}
    only_x = settings_for(sandbox, facebook_page_token=None)
    assert {listener.network for listener in build_listeners(only_x)} == {"x"}
    assert build_listeners(Settings(_env_file=None)) == []
    # And what it builds really talks to the sandbox.
    sandbox.add_mention("hola desde el registro")
    x_mentions = next(lst for lst in build_listeners(settings) if lst.source == "mentions")
    assert len(x_mentions.fetch(None, []).posts) == 1


@pytest.mark.parametrize("kind", ["dm", "mention"])
def test_reply_lookup_ignores_an_identical_reply_sent_before_the_approval(sandbox: Sandbox, kind: str) -> None:
    from datetime import timedelta

    if kind == "dm":
        post = sandbox.add_dm("¿Tienen envío a Lima?", author="carla")
    else:
        post = sandbox.add_mention("¿Tienen envío a Lima?", author="carla")
    author: str | None = None
    c, _ = client(sandbox)
    sender = XSender(c)
    target = {"external_id": post, "kind": kind, "text": "¡Sí! Te escribimos por privado.", "idempotency_key": "k1"}
    if kind == "dm":
        dms = XDMListener(c, brand_user_id=sandbox.brand_user_id).fetch(None, [])
        author = next(p.author.external_id for p in dms.posts if p.external_id == post and p.author)
    sent = sender.send_reply(author_external_id=author, **target)
    found = sender.find_reply(author_external_id=author, not_before=sandbox.now() - timedelta(minutes=5), **target)
    assert found is not None and found.external_id == sent.external_id
    # The same words approved later are another reply: the earlier message must not stand in for it.
    later = sandbox.now() + timedelta(minutes=10)
    assert sender.find_reply(author_external_id=author, not_before=later, **target) is None
    assert sender.find_reply(author_external_id=author, **target) is not None  # no time known: words decide
