"""Instagram webhooks: the same ``hub.challenge`` handshake and ``X-Hub-Signature-256`` check as the Page's, and
the ``comments``, ``mentions`` and ``messages`` fields of an ``object: instagram`` delivery.

A comment arrives whole; a mention arrives as ids only (``media_id``, ``comment_id``) and is read with the
``mentioned_media`` / ``mentioned_comment`` lookups before the delivery is answered, so a lookup that fails
makes the receiver ask for a redelivery instead of storing half of it. Every item goes through the same
``IgItems`` as the polled reads, so a post has one form whichever way it came.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests

from networks.base import WebhookBatch, WebhookRefused
from networks.graph import SIGNATURE_HEADER, challenge, graph_time_text, signature_ok, webhook_time
from networks.instagram.adapter import IgItems, is_ig_id, lookup_mention, make_graph
from networks.instagram.settings import InstagramSettings
from networks.settings import NetworkSettings
from networks.spec import WebhookSpec

Json = dict[str, Any]
FIELDS = frozenset({"comments", "mentions", "messages"})


Lookup = Any  # (media_id, comment_id | None) -> IncomingPost


def _change(items: IgItems, change: Json, at: datetime | None, batch: WebhookBatch, lookup: Lookup) -> None:
    field, value = change.get("field"), change.get("value")
    if not isinstance(value, dict):
        batch.skipped.append("change without a value object")
        return
    if field == "comments":
        media = value.get("media")
        media_id = media.get("id") if isinstance(media, dict) else None
        if not isinstance(media_id, str):
            raise ValueError("comment without its media id")
        # The comment's own time is not in the delivery: the entry's time is when Instagram saw it.
        graph: Json = {"id": value.get("id"), "text": value.get("text"), "timestamp": graph_time_text(at),
                       "from": value.get("from"), "parent_id": value.get("parent_id")}  # fmt: skip
        batch.posts.append(items.comment(graph, media_id=media_id))
    elif field == "mentions":
        media_id, comment_id = value.get("media_id"), value.get("comment_id")
        if not isinstance(media_id, str) or not (comment_id is None or isinstance(comment_id, str)):
            raise ValueError("mention without a media id")
        batch.posts.append(lookup(media_id, comment_id))
    else:
        batch.skipped.append(f"field {str(field)[:20]!r} not read")


def _message(items: IgItems, event: Json, batch: WebhookBatch) -> None:
    message, sender = event.get("message"), event.get("sender")
    if not isinstance(message, dict):
        batch.skipped.append("messaging event without a message (read receipt, reaction, postback)")
        return
    who = {"id": sender.get("id")} if isinstance(sender, dict) else {}
    if message.get("is_echo") is True:
        who = {"id": items.user_id}  # the account's own message, sent from another tool
    graph: Json = {"id": message.get("mid"), "message": message.get("text"),
                   "created_time": graph_time_text(webhook_time(event.get("timestamp"))), "from": who}  # fmt: skip
    # The conversation id is not in the delivery: it stays unknown rather than made up.
    batch.posts.append(items.message(graph, conversation_id=None))


def parse_delivery(payload: Any, *, user_id: str, username: str = "", lookup: Lookup) -> WebhookBatch:
    """The posts of one Instagram delivery; ``WebhookRefused`` when it is not one for our account.

    ``lookup(media_id, comment_id)`` reads a mention (a ``ListenerError`` from it fails the whole delivery,
    which the receiver answers with 503 so that Instagram delivers it again).
    """
    if not isinstance(payload, dict) or payload.get("object") != "instagram":
        raise WebhookRefused('an Instagram delivery is a JSON object with "object": "instagram"')
    entries = payload.get("entry")
    if not isinstance(entries, list) or not entries:
        raise WebhookRefused("delivery without an entry list")
    items, batch = IgItems(user_id, username), WebhookBatch()
    for entry in entries:
        if not isinstance(entry, dict):
            raise WebhookRefused("an entry is not an object")
        if str(entry.get("id")) != user_id:
            raise WebhookRefused(f"entry for account {str(entry.get('id'))[:40]!r}, not ours")
        at = webhook_time(entry.get("time"))
        batch.saw(at)
        changes, messaging = entry.get("changes", []), entry.get("messaging", [])
        if not isinstance(changes, list) or not isinstance(messaging, list):
            raise WebhookRefused("changes and messaging are lists")
        for change in changes:
            try:
                if not isinstance(change, dict):
                    raise ValueError("change is not an object")
                _change(items, change, at, batch, lookup)
            except (ValueError, TypeError) as exc:
                batch.skipped.append(f"{str(change.get('field') if isinstance(change, dict) else '')[:20]}: {exc}")
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


def _secret(own: NetworkSettings) -> str | None:
    ig = own if isinstance(own, InstagramSettings) else None
    return ig.app_secret.get_secret_value() if ig is not None and ig.app_secret is not None else None


def _verify_token(own: NetworkSettings) -> str | None:
    ig = own if isinstance(own, InstagramSettings) else None
    return ig.verify_token.get_secret_value() if ig is not None and ig.verify_token is not None else None


def _parse(payload: Any, own: NetworkSettings, session: requests.Session) -> WebhookBatch:
    if not isinstance(own, InstagramSettings) or not own.user_id:
        raise WebhookRefused("no Instagram account is configured")
    user_id, username = own.user_id, own.username
    graph = make_graph(own, session) if own.token is not None else None

    def lookup(media_id: str, comment_id: str | None) -> Any:
        if graph is None or not is_ig_id(media_id):
            raise ValueError("a mention cannot be read without a token")
        return lookup_mention(graph, user_id=user_id, username=username, media_id=media_id, comment_id=comment_id)

    return parse_delivery(payload, user_id=user_id, username=username, lookup=lookup)


WEBHOOK = WebhookSpec(
    signature_header=SIGNATURE_HEADER,
    signature_ok=signature_ok,
    secret=_secret,
    verify_token=_verify_token,
    challenge=challenge,
    parse=_parse,
)
