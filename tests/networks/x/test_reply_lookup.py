"""Crash reconciliation on X: a reply is looked up back to its approval time, however much the brand said since."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import tweepy

from ground.settings import Settings
from networks.base import RateLimited, TemporaryFailure
from networks.http import RewritingSession
from networks.x.adapter import XDMListener, XSender, make_x_client
from sandbox.server import Sandbox

TEXT = "Lo sentimos, revisamos tu pedido ahora mismo."


def sender_for(sb: Sandbox, **kwargs: Any) -> XSender:
    client = make_x_client(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5.0))
    return XSender(client, brand_user_id=sb.brand_user_id, **kwargs)


def _dm_author(sb: Sandbox, event_id: str) -> str:
    client = make_x_client(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5.0))
    posts = XDMListener(client, brand_user_id=sb.brand_user_id).fetch(None, []).posts
    return next(p.author.external_id for p in posts if p.external_id == event_id and p.author)


def _sent_then_buried(sb: Sandbox, kind: str, newer: int) -> tuple[dict[str, Any], str, XSender]:
    """Send our reply, then let the brand say ``newer`` more things; return the lookup's arguments and the id."""
    approved = sb.now()
    sender = sender_for(sb)
    if kind == "dm":
        post = sb.add_dm("mi pedido no llega", author="cliente_dm")
        author: str | None = _dm_author(sb, post)
    else:
        post = sb.add_mention("mi pedido no llega", author="cliente_x")
        author = None
    target = {"external_id": post, "kind": kind, "author_external_id": author, "text": TEXT, "idempotency_key": "k"}
    sent = sender.send_reply(**target)
    other = sb.add_mention("otra consulta", author="otra_persona")
    for i in range(newer):
        if kind == "dm":
            # The busiest case: the same conversation keeps going, and the brand writes to others too.
            sb.add_brand_dm(f"Seguimos con tu caso, paso {i}", to="cliente_dm")
            sb.add_dm(f"¿novedades? {i}", author="cliente_dm")
            sb.add_brand_dm(f"Hola, te escribimos {i}", to=f"otro_{i % 7}")
        else:
            sb.add_brand_tweet(f"Respuesta {i}", in_reply_to=other)
    return {**target, "not_before": approved - timedelta(minutes=2)}, sent.external_id, sender


@pytest.mark.parametrize("kind", ["mention", "dm"])
@pytest.mark.parametrize("newer", [101, 1001])
def test_lookup_finds_our_reply_behind_many_newer_brand_items(sandbox: Sandbox, kind: str, newer: int) -> None:
    lookup, sent_id, sender = _sent_then_buried(sandbox, kind, newer)
    found = sender.find_reply(**lookup)
    assert found is not None and found.external_id == sent_id


@pytest.mark.parametrize("kind", ["mention", "dm"])
def test_lookup_stops_at_the_approval_time_and_reports_absence(sandbox: Sandbox, kind: str) -> None:
    lookup, _, sender = _sent_then_buried(sandbox, kind, 150)
    # Approved after everything on the network: nothing there is this reply, and the walk says so.
    lookup["not_before"] = sandbox.now() + timedelta(minutes=1)
    before = len(sandbox.requests)
    assert sender.find_reply(**lookup) is None
    assert len(sandbox.requests) - before <= 2  # it did not page through the whole history


@pytest.mark.parametrize("kind", ["mention", "dm"])
def test_a_lookup_that_cannot_finish_within_its_page_cap_is_a_temporary_failure(sandbox: Sandbox, kind: str) -> None:
    lookup, _, _ = _sent_then_buried(sandbox, kind, 250)
    with pytest.raises(TemporaryFailure, match="pages"):
        sender_for(sandbox, lookup_max_pages=2).find_reply(**lookup)


@pytest.mark.parametrize("kind", ["mention", "dm"])
def test_a_failing_or_rate_limited_page_is_reported_not_read_as_absent(sandbox: Sandbox, kind: str) -> None:
    lookup, _, sender = _sent_then_buried(sandbox, kind, 150)
    path = "/dm_conversations/" if kind == "dm" else "/tweets"
    sandbox.fail_next(1, status=503, path_contains=path)
    with pytest.raises(TemporaryFailure):
        sender.find_reply(**lookup)
    assert sender.find_reply(**lookup) is not None
    # A 429 spends the endpoint's window in the sandbox (as on X): checked last.
    sandbox.fail_next(1, status=429, path_contains=path, retry_after=30)
    with pytest.raises(RateLimited):
        sender.find_reply(**lookup)


def test_a_reply_beyond_the_timelines_3200_tweets_is_unsettled_not_absent(sandbox: Sandbox) -> None:
    lookup, _, sender = _sent_then_buried(sandbox, "mention", 0)
    for i in range(3250):
        sandbox.add_brand_tweet(f"Aviso {i}")
    # X serves the newest 3200 tweets of a timeline only: not seeing the reply there proves nothing.
    with pytest.raises(TemporaryFailure, match="check by hand"):
        sender.find_reply(**lookup)


def test_the_sandbox_timeline_refuses_since_id_with_start_time_as_x_does(sandbox: Sandbox) -> None:
    lookup, _, sender = _sent_then_buried(sandbox, "mention", 0)
    with pytest.raises(tweepy.BadRequest, match="conjunction"):
        sender.client.get_users_tweets(
            sandbox.brand_user_id, since_id=lookup["external_id"], start_time=lookup["not_before"], user_auth=True
        )


@pytest.mark.parametrize(
    ("ours", "as_x_shows"),
    [
        (
            "Q&A: revisamos tu pedido <hoy> & te escribimos.",
            lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
        ),
        ("Lo sentimos, revisamos tu pedido.", lambda t: "@cliente_x " + t),
        ("@cliente_x Lo sentimos, revisamos tu pedido.", lambda t: t),
    ],
)
def test_lookup_finds_our_reply_as_x_shows_it_escaped_and_with_the_handle_in_front(
    sandbox: Sandbox, ours: str, as_x_shows: Any
) -> None:
    """X returns tweet text HTML-escaped and a reply's text after the replied-to handle: still our reply, not absent."""
    approved = sandbox.now()
    sender = sender_for(sandbox)
    post = sandbox.add_mention("mi pedido no llega", author="cliente_x")
    target = {"external_id": post, "kind": "mention", "author_external_id": None, "text": ours, "idempotency_key": "k"}
    sent = sender.send_reply(**target)
    tweet = sandbox._tweet(sent.external_id)
    tweet["text"] = as_x_shows(tweet["text"])
    found = sender.find_reply(**target, not_before=approved - timedelta(minutes=2))
    assert found is not None and found.external_id == sent.external_id
