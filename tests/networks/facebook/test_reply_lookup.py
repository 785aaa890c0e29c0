"""Crash reconciliation on Facebook: a reply is looked up back to its approval time, however busy the thread."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ground.settings import Settings
from networks.base import RateLimited, TemporaryFailure
from networks.facebook.adapter import FacebookMessagesListener, FacebookSender, make_graph
from networks.http import RewritingSession
from sandbox.server import Sandbox

TEXT = "Lo sentimos, revisamos tu pedido ahora mismo."


def sender_for(sb: Sandbox, **kwargs: Any) -> FacebookSender:
    graph = make_graph(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5.0))
    return FacebookSender(graph, page_id=sb.page_id, **kwargs)


def _sent_then_buried(sb: Sandbox, kind: str, newer: int) -> tuple[dict[str, Any], str, FacebookSender]:
    """Send our reply, then let the page say ``newer`` more things there; return the lookup's arguments and id."""
    approved = sb.now()
    sender = sender_for(sb)
    author: str | None = None
    if kind == "dm":
        post = sb.add_fb_message("Mi pedido no llega", author="Cliente Messenger")
        graph = make_graph(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5.0))
        got = FacebookMessagesListener(graph, page_id=sb.page_id).fetch(None, []).posts
        author = next(p.author.external_id for p in got if p.external_id == post and p.author)
    else:
        post = sb.add_fb_comment(sb.add_fb_post("Nueva colección"), "Mi pedido no llega", author="Ana")
    target = {"external_id": post, "kind": kind, "author_external_id": author, "text": TEXT, "idempotency_key": "k"}
    sent = sender.send_reply(**target)
    for i in range(newer):
        if kind == "dm":
            sb.add_fb_page_message(f"Seguimos con tu caso, paso {i}", to="Cliente Messenger")
            sb.add_fb_message(f"¿Novedades? {i}", author="Cliente Messenger")
        else:
            # A busy thread: the page and the customer keep answering under the same comment.
            sb.add_fb_comment(post, f"Te escribimos por privado ({i})", author=None)
    return {**target, "not_before": approved - timedelta(minutes=2)}, sent.external_id, sender


@pytest.mark.parametrize("kind", ["comment", "dm"])
@pytest.mark.parametrize("newer", [101, 1001])
def test_lookup_finds_our_reply_behind_many_newer_page_items(sandbox: Sandbox, kind: str, newer: int) -> None:
    lookup, sent_id, sender = _sent_then_buried(sandbox, kind, newer)
    found = sender.find_reply(**lookup)
    assert found is not None and found.external_id == sent_id


@pytest.mark.parametrize("kind", ["comment", "dm"])
def test_lookup_stops_at_the_approval_time_and_reports_absence(sandbox: Sandbox, kind: str) -> None:
    lookup, _, sender = _sent_then_buried(sandbox, kind, 150)
    lookup["not_before"] = sandbox.now() + timedelta(minutes=1)
    before = len(sandbox.requests)
    assert sender.find_reply(**lookup) is None
    assert len(sandbox.requests) - before <= 2  # it did not page through the whole thread


@pytest.mark.parametrize("kind", ["comment", "dm"])
def test_a_lookup_that_cannot_finish_within_its_page_cap_is_a_temporary_failure(sandbox: Sandbox, kind: str) -> None:
    lookup, _, _ = _sent_then_buried(sandbox, kind, 250)
    with pytest.raises(TemporaryFailure, match="pages"):
        sender_for(sandbox, lookup_max_pages=2).find_reply(**lookup)


@pytest.mark.parametrize("kind", ["comment", "dm"])
def test_a_failing_or_rate_limited_page_is_reported_not_read_as_absent(sandbox: Sandbox, kind: str) -> None:
    lookup, _, sender = _sent_then_buried(sandbox, kind, 150)
    path = "/messages" if kind == "dm" else "/comments"
    sandbox.fail_next(1, status=500, path_contains=path)
    with pytest.raises(TemporaryFailure):
        sender.find_reply(**lookup)
    sandbox.fail_next(1, status=429, path_contains=path)
    with pytest.raises(RateLimited):
        sender.find_reply(**lookup)
    assert sender.find_reply(**lookup) is not None


def test_a_reply_to_a_reply_is_looked_up_in_the_thread_it_lands_in(sandbox: Sandbox) -> None:
    """Graph keeps threads one level deep: our reply to a reply is listed under the top-level comment."""
    top = sandbox.add_fb_comment(sandbox.add_fb_post("Horario"), "¿Abren hoy?", author=None)
    theirs = sandbox.add_fb_comment(top, "Mi pedido no llega", author="Ana")
    sender = sender_for(sandbox)
    target = {"external_id": theirs, "kind": "comment", "author_external_id": None, "text": TEXT}
    target["idempotency_key"] = "k"
    sent = sender.send_reply(**target)
    for i in range(120):
        sandbox.add_fb_comment(top, f"Seguimos ({i})", author=None)
    found = sender.find_reply(**target, not_before=sandbox.now() - timedelta(minutes=2))
    assert found is not None and found.external_id == sent.external_id
