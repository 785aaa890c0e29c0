"""X Account Activity deliveries: the CRC challenge, the ``x-twitter-webhooks-signature`` check, the payloads.

Account Activity sends v1.1-shaped objects (``id_str``, ``user.screen_name``, ``created_at`` as
``Wed Oct 10 20:19:24 +0000 2018``; DM events as ``message_create``); they are turned into the v2 shapes the
poller reads and normalised by the same ``XTweets``, so a post has one form whichever way it came.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from networks.base import WebhookBatch, WebhookRefused
from networks.x.adapter import XTweets

Json = dict[str, Any]
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
# The v1.1 ``created_at`` format of Account Activity tweets.
V1_TIME = "%a %b %d %H:%M:%S %z %Y"


def _digest(secret: str, message: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def crc_response(consumer_secret: str, crc_token: str) -> Json:
    """The answer to X's CRC check: ``{"response_token": "sha256=<base64 HMAC-SHA256(crc_token)>"}``."""
    return {"response_token": _digest(consumer_secret, crc_token.encode())}


def sign(consumer_secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` value X puts on a delivery of ``body``."""
    return _digest(consumer_secret, body)


def signature_ok(consumer_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` with the consumer secret (compared in constant time)."""
    if not header:
        return False
    return hmac.compare_digest(sign(consumer_secret, body).encode(), header.strip().encode("utf-8", "replace"))


def _str_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _v1_time(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, V1_TIME).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    except (ValueError, OverflowError):
        return None


def _ms_time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _v2_time(at: datetime) -> str:
    """A time as X API v2 writes it, to the millisecond (``2022-11-07T18:11:04.123Z``)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _obj(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _user(user: Any) -> Json:
    if not isinstance(user, dict):
        return {}
    return {
        "id": _str_id(user.get("id_str") or user.get("id")),
        "username": user.get("screen_name"),
        "name": user.get("name"),
        "verified": user.get("verified") is True,
        "public_metrics": {"followers_count": user.get("followers_count")},
    }


def v2_tweet(tweet: Json) -> tuple[Json, dict[str, Json], dict[str, Json]]:
    """An Account Activity (v1.1) tweet as the v2 tweet, users and included tweets ``XTweets.tweet`` reads."""
    extended = tweet.get("extended_tweet")
    text = extended.get("full_text") if isinstance(extended, dict) else None
    author = _user(tweet.get("user"))
    refs = []
    if (replied := _str_id(tweet.get("in_reply_to_status_id_str"))) is not None:
        refs.append({"type": "replied_to", "id": replied})
    included: dict[str, Json] = {}
    quoted = tweet.get("quoted_status")
    if isinstance(quoted, dict) and (qid := _str_id(quoted.get("id_str"))) is not None:
        refs.append({"type": "quoted", "id": qid})
        included[qid] = {"id": qid, "author_id": _user(quoted.get("user")).get("id")}
    retweeted = tweet.get("retweeted_status")
    if isinstance(retweeted, dict) and (rid := _str_id(retweeted.get("id_str"))) is not None:
        refs.append({"type": "retweeted", "id": rid})
    entities = tweet.get("entities")
    mentions = entities.get("user_mentions") if isinstance(entities, dict) else None
    # ``timestamp_ms`` is the same instant as ``created_at`` to the millisecond (v1.1's created_at has whole
    # seconds): the post's time is the same whether it came by webhook or by poll, and latency is not overstated.
    stamped = _ms_time(tweet.get("timestamp_ms"))
    v2: Json = {
        "id": _str_id(tweet.get("id_str")),
        "text": text if isinstance(text, str) else tweet.get("text"),
        "created_at": _v2_time(stamped) if stamped is not None else _v1_time(tweet.get("created_at")),
        "author_id": author.get("id"),
        "lang": tweet.get("lang"),
        "entities": {
            "mentions": [
                {"id": _str_id(m.get("id_str")), "username": m.get("screen_name")}
                for m in (mentions if isinstance(mentions, list) else [])
                if isinstance(m, dict)
            ]
        },
    }
    if refs:
        v2["referenced_tweets"] = refs
    users = {author["id"]: author} if author.get("id") else {}
    return v2, users, included


def v2_dm(event: Json, users: Any) -> tuple[Json, dict[str, Json]]:
    """An Account Activity ``message_create`` event as the v2 DM event and users ``XTweets.dm`` reads."""
    create = _obj(event.get("message_create"))
    data, target = _obj(create.get("message_data")), _obj(create.get("target"))
    sender, recipient = _str_id(create.get("sender_id")), _str_id(target.get("recipient_id"))
    at = _ms_time(event.get("created_timestamp"))
    conversation = "-".join(sorted((sender, recipient), key=int)) if sender and recipient else None
    v2 = {
        "id": _str_id(event.get("id")),
        "event_type": "MessageCreate",
        "text": data.get("text"),
        "sender_id": sender,
        "dm_conversation_id": conversation,
        "created_at": _v2_time(at) if at else None,
    }
    known = users if isinstance(users, dict) else {}
    v2_users = {uid: _user(u) for uid, u in known.items() if isinstance(uid, str)}
    return v2, v2_users


def parse_activity(payload: Any, *, brand_user_id: str | None, brand_username: str | None) -> WebhookBatch:
    """The posts of one Account Activity delivery; ``WebhookRefused`` when it is not one for the brand."""
    if not isinstance(payload, dict):
        raise WebhookRefused("an Account Activity delivery is a JSON object")
    for_user = _str_id(payload.get("for_user_id"))
    if for_user is None:
        raise WebhookRefused("delivery without for_user_id")
    if brand_user_id and for_user != brand_user_id:
        raise WebhookRefused(f"delivery for user {for_user}, not the brand account")
    tweets, dms = payload.get("tweet_create_events"), payload.get("direct_message_events")
    known = {k for k in payload if k.endswith("_events")}
    if tweets is None and dms is None and not known:
        raise WebhookRefused("delivery without any *_events list")
    batch = WebhookBatch()
    parse = XTweets(brand_user_id=brand_user_id, brand_username=brand_username)
    for tweet in tweets if isinstance(tweets, list) else []:
        if not isinstance(tweet, dict):
            batch.skipped.append("tweet_create_events item is not an object")
            continue
        v2, users, included = v2_tweet(tweet)
        batch.saw(_ms_time(tweet.get("timestamp_ms")))
        try:
            post = parse.tweet(v2, kind="mention", source="mentions", users=users, included=included)
        except (ValueError, TypeError) as exc:
            batch.skipped.append(f"tweet: {exc}")
            continue
        batch.saw(post.created_at)
        batch.posts.append(post)
    for event in dms if isinstance(dms, list) else []:
        if not isinstance(event, dict) or event.get("type") != "message_create":
            batch.skipped.append("direct_message_events item is not a message_create")
            continue
        v2, users = v2_dm(event, payload.get("users"))
        try:
            post = parse.dm(v2, users=users)
        except (ValueError, TypeError) as exc:
            batch.skipped.append(f"DM: {exc}")
            continue
        batch.saw(post.created_at)
        batch.posts.append(post)
    for name in sorted(known - {"tweet_create_events", "direct_message_events"}):
        batch.skipped.append(f"{name} not read (not a post)")
    return batch
