"""Facebook Page webhooks: the ``hub.challenge`` handshake, the ``X-Hub-Signature-256`` check, the payloads.

A delivery is ``{"object": "page", "entry": [{"id", "time", "changes": [{"field": "feed", "value"}]}]}`` for
posts and comments, or entries with ``messaging`` for Messenger; each item is turned into the shape the Graph
reads return and normalised by the same ``GraphItems``, so a post has one form whichever way it came.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from networks.base import WebhookBatch, WebhookRefused
from networks.facebook.adapter import GraphItems

Json = dict[str, Any]
SIGNATURE_HEADER = "x-hub-signature-256"
# The feed items that are posts; reactions, likes and shares are not.
POST_ITEMS = frozenset({"status", "post", "photo", "video"})


def sign(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Facebook puts on a delivery of ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` with the app secret (compared in constant time)."""
    if not header:
        return False
    return hmac.compare_digest(sign(app_secret, body).encode(), header.strip().encode("utf-8", "replace"))


def challenge(params: dict[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when the subscription handshake names our verify token, else None."""
    mode, token, answer = params.get("hub.mode"), params.get("hub.verify_token"), params.get("hub.challenge")
    if mode != "subscribe" or token is None or answer is None or not verify_token:
        return None
    if not hmac.compare_digest(token.encode("utf-8", "replace"), verify_token.encode()):
        return None
    return answer


def _unix(value: Any) -> datetime | None:
    """A webhook time: unix seconds, or milliseconds (Messenger's ``timestamp``, some entries' ``time``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if value > 10**11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _graph_time(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%S+0000") if at is not None else None


def _feed_item(items: GraphItems, value: Json, batch: WebhookBatch) -> None:
    item, verb = value.get("item"), value.get("verb")
    if verb != "add":
        batch.skipped.append(f"feed {item!s:.20} {verb!s:.20} not read (only new items are posts)")
        return
    created = _graph_time(_unix(value.get("created_time")))
    who = value.get("from")
    if item == "comment":
        post_id, parent_id = value.get("post_id"), value.get("parent_id")
        graph: Json = {"id": value.get("comment_id"), "message": value.get("message"), "created_time": created}
        if isinstance(who, dict):
            graph["from"] = who
        if parent_id and parent_id != post_id:
            graph["parent"] = {"id": parent_id}
        if not isinstance(post_id, str):
            raise ValueError("comment without a post_id")
        batch.posts.append(items.comment(graph, post_id=post_id))
    elif item in POST_ITEMS:
        graph = {"id": value.get("post_id"), "message": value.get("message"), "created_time": created}
        if isinstance(who, dict):
            graph["from"] = who
        if isinstance(value.get("link"), str):
            graph["permalink_url"] = value["link"]
        batch.posts.append(items.post(graph))
    else:
        batch.skipped.append(f"feed item {item!s:.20} not read (not a post or comment)")


def _message(items: GraphItems, event: Json, batch: WebhookBatch) -> None:
    message, sender = event.get("message"), event.get("sender")
    if not isinstance(message, dict):
        batch.skipped.append("messaging event without a message (read receipt, delivery, postback)")
        return
    at = _unix(event.get("timestamp"))
    graph: Json = {
        "id": message.get("mid"),
        "message": message.get("text"),
        "created_time": _graph_time(at),
        "from": {"id": sender.get("id")} if isinstance(sender, dict) else None,
    }
    if message.get("is_echo") is True:
        graph["from"] = {"id": items.page_id}  # the page's own message, sent from another tool
    # The thread id (t_…) is not in the delivery: it stays unknown rather than made up.
    batch.posts.append(replace(items.message(graph, conversation={}), conversation_id=None))


def parse_page_delivery(payload: Any, *, page_id: str) -> WebhookBatch:
    """The posts of one Page delivery; ``WebhookRefused`` when it is not one for our Page."""
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise WebhookRefused('a Page delivery is a JSON object with "object": "page"')
    entries = payload.get("entry")
    if not isinstance(entries, list) or not entries:
        raise WebhookRefused("delivery without an entry list")
    items, batch = GraphItems(page_id), WebhookBatch()
    for entry in entries:
        if not isinstance(entry, dict):
            raise WebhookRefused("an entry is not an object")
        if str(entry.get("id")) != page_id:
            raise WebhookRefused(f"entry for page {str(entry.get('id'))[:40]!r}, not ours")
        batch.saw(_unix(entry.get("time")))
        changes, messaging = entry.get("changes", []), entry.get("messaging", [])
        if not isinstance(changes, list) or not isinstance(messaging, list):
            raise WebhookRefused("changes and messaging are lists")
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                batch.skipped.append("change without a value object")
            elif change.get("field") != "feed":
                batch.skipped.append(f"field {str(change.get('field'))[:20]!r} not read")
            else:
                try:
                    _feed_item(items, change["value"], batch)
                except (ValueError, TypeError) as exc:
                    batch.skipped.append(f"feed: {exc}")
        for event in messaging:
            try:
                if not isinstance(event, dict):
                    raise ValueError("messaging event is not an object")
                _message(items, event, batch)
            except (ValueError, TypeError) as exc:
                batch.skipped.append(f"messaging: {exc}")
    for post in batch.posts:
        batch.saw(post.created_at)
    return batch
