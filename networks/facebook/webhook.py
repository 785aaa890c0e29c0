"""Facebook Page webhooks: the ``hub.challenge`` handshake, the ``X-Hub-Signature-256`` check, the payloads.

A delivery is ``{"object": "page", "entry": [{"id", "time", "changes": [{"field": "feed", "value"}]}]}`` for
posts and comments, or entries with ``messaging`` for Messenger; each item is turned into the shape the Graph
reads return and normalised by the same ``GraphItems``, so a post has one form whichever way it came.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from networks.base import WebhookBatch, WebhookRefused
from networks.facebook.adapter import GraphItems
from networks.graph import graph_time_text, webhook_time

Json = dict[str, Any]
# The feed items that are posts; reactions, likes and shares are not.
POST_ITEMS = frozenset({"status", "post", "photo", "video"})


def _feed_item(items: GraphItems, value: Json, batch: WebhookBatch) -> None:
    item, verb = value.get("item"), value.get("verb")
    if verb != "add":
        batch.skipped.append(f"feed {item!s:.20} {verb!s:.20} not read (only new items are posts)")
        return
    created = graph_time_text(webhook_time(value.get("created_time")))
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
    at = webhook_time(event.get("timestamp"))
    graph: Json = {
        "id": message.get("mid"),
        "message": message.get("text"),
        "created_time": graph_time_text(at),
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
        batch.saw(webhook_time(entry.get("time")))
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
