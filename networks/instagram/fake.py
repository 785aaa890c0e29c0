"""The sandbox's Instagram face: an Instagram professional account on the Graph API, as the real client meets it.

Media, comments and their replies, photo tags and @mentions (``mentioned_media`` / ``mentioned_comment``), the
account's Instagram conversations (``/{page-id}/conversations?platform=instagram``) and the sends: a reply to a
comment, a reply to a mention, a DM inside the 24-hour window and a private reply to a comment (once, within
7 days). Field names, newest-first order and cursor paging follow the recordings in
``tests/fixtures/instagram/graph-api`` (python-facebook's test data, Apache-2.0); every answer carries an
``x-business-use-case-usage`` header, and the shared fault script applies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from urllib.parse import quote

from networks.fake import (
    MESSENGER_WINDOW,
    CursorRefused,
    Fault,
    Json,
    Reply,
    SandboxCore,
    SentRecord,
    b64,
    fields,
    graph_time,
    json_reply,
    parse_graph_time,
    pick,
    read_number,
    since_until,
    unb64,
    with_headers,
)

# Instagram lets an account answer a DM within 24 h of the person's last message, and a comment privately
# once, within 7 days of the comment.
IG_MESSAGE_WINDOW = MESSENGER_WINDOW
IG_PRIVATE_REPLY_WINDOW = timedelta(days=7)
# Calls per rolling hour the sandbox's business use case allows (Instagram's is 4,800 × impressions).
SANDBOX_IG_CALLS_PER_HOUR = 4_800
IG_USER_ID = "17841400000000001"
IG_USERNAME = "escucha.help"
MEDIA_FIELDS = ("id", "timestamp")
COMMENT_FIELDS = ("id", "text", "timestamp")


class _NoMention(Exception):
    """A ``mentioned_media`` / ``mentioned_comment`` lookup of something that does not mention the account."""


class InstagramSandbox(SandboxCore):
    """Instagram's half of the sandbox (mounted beside the Facebook Page it is linked to)."""

    ig_user_id: str = IG_USER_ID
    ig_username: str = IG_USERNAME
    # Percentages to report in x-business-use-case-usage instead of the counted ones (tests script a busy app).
    ig_usage_override: dict[str, int] | None = None

    def _ig_state(self) -> Json:
        # Made on first use: the sandbox's constructor chain belongs to SandboxCore and stays untouched.
        state: Json | None = getattr(self, "_ig", None)
        if state is None:
            state = {"seq": 17_900_000_000_000_000, "users": {}, "media": [], "comments": [], "convs": {},
                     "messages": [], "calls": []}  # fmt: skip
            self._ig = state
        return state

    def _ig_id(self) -> str:
        state = self._ig_state()
        state["seq"] += 1 + state["seq"] % 5  # gaps like real ids, still increasing
        return str(state["seq"])

    def _ig_user(self, username: str) -> Json:
        users: dict[str, Json] = self._ig_state()["users"]
        if username not in users:
            digest = int(hashlib.sha1(username.encode()).hexdigest(), 16)  # noqa: S324 (not security)
            users[username] = {"id": str(6 * 10**15 + digest % (10**15)), "username": username}
        return users[username]

    def _ig_brand(self) -> Json:
        return {"id": self.ig_user_id, "username": self.ig_username}

    def ig_app_usage(self) -> dict[str, int]:
        """The percentages the next Instagram answer reports (calls in the last sandbox hour)."""
        with self._lock:
            if self.ig_usage_override is not None:
                return dict(self.ig_usage_override)
            now = self.now().timestamp()
            state = self._ig_state()
            state["calls"] = [t for t in state["calls"] if t > now - 3600]
            pct = min(100, -(-len(state["calls"]) * 100 // SANDBOX_IG_CALLS_PER_HOUR))
            return {"call_count": pct, "total_time": pct, "total_cputime": pct}

    # ----------------------------------------------------------------- scripting (admin routes, tests)
    def add_ig_media(
        self, caption: str, *, author: str | None = None, at: datetime | None = None, tagged: bool = True
    ) -> str:
        """Add a media: the account's own (``author`` None), or someone else's that tags or @mentions it."""
        with self._lock:
            at = at or self.now()
            who = self._ig_brand() if author is None else self._ig_user(author)
            media_id = self._ig_id()
            media = {
                "id": media_id,
                "caption": caption,
                "timestamp": graph_time(at),
                "media_type": "IMAGE",
                "media_product_type": "FEED",
                "permalink": f"https://www.instagram.com/p/{b64(media_id)[:11]}/",
                "username": who["username"],
                "owner": {"id": who["id"]},
                "comments_count": 0,
                "like_count": 0,
                "_tagged": author is not None and tagged,
            }
            self._ig_state()["media"].append(media)
            return media_id

    def add_ig_comment(
        self,
        target_id: str,
        text: str,
        *,
        author: str | None = "visitante",
        at: datetime | None = None,
        lang: str = "es",
        drop: tuple[str, ...] = (),
    ) -> str:
        """Add a comment on a media, or a reply when ``target_id`` is a comment; return its id."""
        del lang
        with self._lock:
            who = self._ig_brand() if author is None else self._ig_user(author)
            return str(self._ig_new_comment(target_id, text, who, at=at or self.now(), drop=drop)["id"])

    def _ig_new_comment(
        self, target_id: str, text: str, who: Json, *, at: datetime, drop: tuple[str, ...] = ()
    ) -> Json:
        target = self._ig_object(target_id)
        if target is None or ("_media_id" not in target and "caption" not in target):
            raise KeyError(target_id)
        parent: Json | None = None
        if "_media_id" in target:  # a comment: Instagram keeps threads one level deep
            parent = target if target["_parent_id"] is None else self._ig_object(target["_parent_id"])
            media = self._ig_object(target["_media_id"])
        else:
            media = target
        assert media is not None
        comment: Json = {
            "id": self._ig_id(),
            "text": text,
            "timestamp": graph_time(at),
            "username": who["username"],
            "from": {"id": who["id"], "username": who["username"]},
            "media": {"id": media["id"], "media_product_type": media["media_product_type"]},
            "like_count": 0,
            "hidden": False,
            "_media_id": media["id"],
            "_parent_id": parent["id"] if parent else None,
            "_private_reply": None,
            "_drop": list(drop),
        }
        if parent is not None:
            comment["parent_id"] = parent["id"]
        media["comments_count"] += 1
        self._ig_state()["comments"].append(comment)
        return comment

    def _ig_conversation(self, user: Json, at: datetime) -> Json:
        convs: dict[str, Json] = self._ig_state()["convs"]
        conv = convs.get(user["id"])
        if conv is None:
            conv = {"id": "aWdfZAG06" + b64(f"c{self._ig_id()}"), "updated_time": graph_time(at),
                    "_user_id": user["id"], "_last_user_message": None}  # fmt: skip
            convs[user["id"]] = conv
        return conv

    def _ig_new_message(self, sender: Json, recipient: Json, text: str, at: datetime, conv: Json) -> Json:
        # As long as real ones (about 150 characters): the account, the person, the thread and the message, base64.
        token = b64(f"{self.ig_user_id}:{conv['_user_id']}:{conv['id']}:{self._ig_id()}")
        message = {
            "id": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAWQ6" + token,
            "message": text,
            "created_time": graph_time(at),
            "from": {"username": sender["username"], "id": sender["id"]},
            "to": {"data": [{"username": recipient["username"], "id": recipient["id"]}]},
            "_conversation_id": conv["id"],
        }
        self._ig_state()["messages"].append(message)
        conv["updated_time"] = graph_time(at)
        return message

    def add_ig_message(
        self, text: str, *, author: str = "cliente.ig", at: datetime | None = None, lang: str = "es"
    ) -> str:
        """Add an Instagram DM from ``author`` to the account; return the message id."""
        del lang
        with self._lock:
            at = at or self.now()
            user = self._ig_user(author)
            conv = self._ig_conversation(user, at)
            conv["_last_user_message"] = at
            return str(self._ig_new_message(user, self._ig_brand(), text, at, conv)["id"])

    def ig_user_id_of(self, username: str) -> str:
        """The Instagram-scoped id the sandbox gives ``username``."""
        with self._lock:
            return str(self._ig_user(username)["id"])

    def ig_media_ids(self) -> list[str]:
        """Ids of the account's own media, oldest first."""
        with self._lock:
            return [m["id"] for m in self._ig_state()["media"] if m["owner"]["id"] == self.ig_user_id]

    def _ig_object(self, object_id: str) -> Json | None:
        state = self._ig_state()
        for item in (*state["media"], *state["comments"], *state["messages"]):
            if item["id"] == object_id:
                return item
        return None

    # ----------------------------------------------------------------- the Graph API face
    def is_instagram(self, method: str, path: str, params: dict[str, str]) -> bool:
        """Whether a Graph request is for the Instagram account (the rest goes to the Page's face)."""
        segments = path.split("/")
        with self._lock:
            if segments == [""]:
                ids = [i for i in params.get("ids", "").split(",") if i]
                return bool(ids) and all(self._ig_object(i) is not None for i in ids)
            if segments[0] == self.ig_user_id:
                return True
            if segments[1:] == ["conversations"] and params.get("platform") == "instagram":
                return True
            convs = {c["id"] for c in self._ig_state()["convs"].values()}
            return segments[0] in convs or self._ig_object(segments[0]) is not None

    def _instagram(self, method: str, path: str, params: dict[str, str], fault: Fault | None) -> Reply:
        with self._lock:
            self._ig_state()["calls"].append(self.now().timestamp())
        usage = {self.ig_user_id: [{"type": "instagram", **self.ig_app_usage(), "estimated_time_to_regain_access": 0}]}
        reply = self._ig_reply(method, path, params, fault)
        return with_headers(reply, {"x-business-use-case-usage": json.dumps(usage, separators=(",", ":"))})

    def _ig_reply(self, method: str, path: str, params: dict[str, str], fault: Fault | None) -> Reply:
        token = params.get("access_token", "")
        if token not in self.fb_tokens:
            return ig_error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if self.fb_app_secret is not None:
            proof = hmac.new(self.fb_app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if params.get("appsecret_proof") != proof:
                return ig_error(400, "Invalid appsecret_proof provided in the API argument", 100)
        if fault is not None and fault.kind == "status":
            if fault.status == 429:
                return ig_error(400, "(#80002) There have been too many calls to this Instagram account.", 80002)
            if fault.status in (401, 403):
                return ig_error(400, "Error validating access token: Session has expired", 190)
            return ig_error(fault.status, "An unexpected error has occurred. Please retry your request later.", 2)
        segments = path.split("/")
        with self._lock:
            try:
                if method == "POST":
                    return self._ig_post(segments, params)
                return self._ig_get(segments, params)
            except CursorRefused as exc:
                return ig_error(400, f"(#100) The after cursor {exc} is invalid or has expired", 100)
            except _NoMention as exc:
                return ig_error(400, f"(#100) {exc}", 100)

    def _ig_get(self, segments: list[str], params: dict[str, str]) -> Reply:
        state = self._ig_state()
        if segments == [""]:
            ids = [i for i in params.get("ids", "").split(",") if i]
            if len(ids) > 50:
                return ig_error(400, "(#100) Too many IDs. Maximum: 50", 100)
            names = fields(params.get("fields"), MEDIA_FIELDS)
            return json_reply(200, {i: self._ig_view(self._ig_object(i) or {}, names) for i in ids})
        node, edge = segments[0], (segments[1] if len(segments) > 1 else None)
        if node == self.ig_user_id and edge is None:
            return json_reply(200, self._ig_account(params))
        if node == self.ig_user_id and edge in ("media", "tags"):
            wanted = [
                m for m in state["media"]
                if (m["owner"]["id"] == self.ig_user_id if edge == "media" else m["_tagged"])
            ]  # fmt: skip
            media = since_until(sorted(wanted, key=_newest, reverse=True), params, "timestamp")
            return json_reply(200, self._ig_page(media, params, MEDIA_FIELDS))
        if edge == "conversations" and params.get("platform") == "instagram":
            convs = sorted(state["convs"].values(), key=lambda c: c["updated_time"], reverse=True)
            if params.get("user_id"):
                convs = [c for c in convs if c["_user_id"] == params["user_id"]]
            return json_reply(200, self._ig_page(convs, params, ("id", "updated_time")))
        if edge == "messages" and node in {c["id"] for c in state["convs"].values()}:
            messages = [m for m in reversed(state["messages"]) if m["_conversation_id"] == node]
            return json_reply(200, self._ig_page(messages, params, ("id", "created_time")))
        found = self._ig_object(node)
        if found is None:
            return ig_missing(node if edge is None else f"{node}/{edge}")
        if edge is None:
            return json_reply(200, self._ig_view(found, fields(params.get("fields"), COMMENT_FIELDS)))
        if edge == "comments" and "caption" in found:
            return json_reply(200, self._ig_page(self._ig_comments_of(found["id"]), params, COMMENT_FIELDS))
        if edge == "replies" and "_media_id" in found:
            return json_reply(200, self._ig_page(self._ig_replies_of(found["id"]), params, COMMENT_FIELDS))
        return ig_missing(f"{node}/{edge}")

    def _ig_comments_of(self, media_id: str) -> list[Json]:
        """A media's top-level comments, newest first (as the recordings list them)."""
        items = [c for c in self._ig_state()["comments"] if c["_media_id"] == media_id and c["_parent_id"] is None]
        return sorted(items, key=_newest, reverse=True)

    def _ig_replies_of(self, comment_id: str) -> list[Json]:
        items = [c for c in self._ig_state()["comments"] if c["_parent_id"] == comment_id]
        return sorted(items, key=_newest, reverse=True)

    def _ig_view(self, item: Json, names: set[str]) -> Json:
        """An object with its plain fields and a ``replies`` or ``comments`` expansion (first page only)."""
        body = pick(item, names)
        for edge in ("replies", "comments"):
            if edge not in names:
                continue
            if edge == "replies" and "_media_id" in item:
                rows = self._ig_replies_of(item["id"])
            elif edge == "comments" and "caption" in item:
                rows = self._ig_comments_of(item["id"])
            else:
                continue
            if rows:  # Graph leaves an empty edge out of an expanded object
                body[edge] = {"data": [pick(r, set(COMMENT_FIELDS) | {"username", "from", "parent_id"})
                                       for r in rows[:50]]}  # fmt: skip
        return body

    def _ig_account(self, params: dict[str, str]) -> Json:
        """``GET /{ig-user-id}``: the account, with the ``mentioned_media`` / ``mentioned_comment`` lookups."""
        spec = params.get("fields", "id,username")
        out: Json = {"id": self.ig_user_id}
        if "username" in spec:
            out["username"] = self.ig_username
        for lookup, key in (("mentioned_media", "media_id"), ("mentioned_comment", "comment_id")):
            start = spec.find(f"{lookup}.{key}(")
            if start < 0:
                continue
            wanted = spec[start + len(lookup) + len(key) + 2 :].split(")", 1)[0]
            found = self._ig_object(wanted)
            ok = found is not None and (
                found.get("_tagged") if lookup == "mentioned_media" else f"@{self.ig_username}" in found.get("text", "")
            )
            if not ok or found is None:
                raise _NoMention(f"The {key} {wanted[:40]} does not mention this account")
            out[lookup] = self._ig_view(found, fields(_braced(spec[start:]) or "id", ("id",)))
        return out

    def _ig_page(self, items: list[Json], params: dict[str, str], default: tuple[str, ...]) -> Json:
        limit = read_number(params.get("limit", "")) or 25
        limit = max(1, min(limit, 100))
        start = 0
        if params.get("after"):
            ids = [i["id"] for i in items]
            after = unb64(params["after"])
            if after not in ids:
                raise CursorRefused(params["after"][:40])
            start = ids.index(after) + 1
        page, more = items[start : start + limit], len(items) > start + limit
        names = fields(params.get("fields"), default)
        out: Json = {"data": [self._ig_view(i, names) for i in page]}
        if page:
            paging: Json = {"cursors": {"before": b64(page[0]["id"]), "after": b64(page[-1]["id"])}}
            if more:
                query = {k: v for k, v in params.items() if k not in ("after", "before", "appsecret_proof")}
                query["after"] = paging["cursors"]["after"]
                paging["next"] = "https://graph.facebook.com/v21.0/?" + "&".join(
                    f"{k}={quote(v)}" for k, v in query.items()
                )
            out["paging"] = paging
        return out

    def _ig_post(self, segments: list[str], params: dict[str, str]) -> Reply:
        brand = self._ig_brand()
        message = params.get("message", "")
        if segments == [self.ig_user_id, "messages"]:
            return self._ig_send_message(params)
        if segments == [self.ig_user_id, "mentions"]:
            target = params.get("comment_id") or params.get("media_id") or ""
            found = self._ig_object(target)
            if found is None or not (found.get("_tagged") or f"@{self.ig_username}" in found.get("text", "")):
                return ig_error(400, "(#100) The media or comment does not mention this account", 100)
            if not message.strip():
                return ig_error(400, "(#100) Missing message", 100)
            comment = self._ig_new_comment(target, message, brand, at=self.now())
            self._sent.append(SentRecord("instagram", "comment", message, comment["id"], in_reply_to=target))
            return json_reply(200, {"id": comment["id"]})
        if len(segments) == 2 and segments[1] in ("replies", "comments"):
            node = self._ig_object(segments[0])
            if node is None or (segments[1] == "replies") != ("_media_id" in node):
                return ig_missing("/".join(segments))
            if not message.strip():
                return ig_error(400, "(#100) Missing message", 100)
            if len(message) > 2200:
                return ig_error(400, "(#100) The comment is too long: at most 2200 characters", 100)
            comment = self._ig_new_comment(segments[0], message, brand, at=self.now())
            self._sent.append(SentRecord("instagram", "comment", message, comment["id"], in_reply_to=segments[0]))
            return json_reply(200, {"id": comment["id"]})
        return ig_error(400, f"Unsupported post request. Object with ID '{segments[0][:40]}' does not exist", 100)

    def _ig_send_message(self, params: dict[str, str]) -> Reply:
        try:
            recipient = json.loads(params.get("recipient", ""))
            text = json.loads(params.get("message", ""))["text"]
            if not isinstance(recipient, dict) or not isinstance(text, str):
                raise TypeError("recipient and message.text")
        except (ValueError, KeyError, TypeError):
            return ig_error(400, "(#100) param recipient and message must be JSON objects", 100)
        if len(text) > 1000:
            return ig_error(400, "(#100) Message text is too long: at most 1000 characters", 100)
        now = self.now()
        if "comment_id" in recipient:
            comment = self._ig_object(str(recipient["comment_id"]))
            if comment is None or "_media_id" not in comment:
                return ig_error(400, "(#100) No matching comment found", 100, subcode=2534014)
            if comment["_private_reply"] is not None:
                return ig_error(400, "(#10) This comment has already been replied to privately.", 10,
                                subcode=2534023)  # fmt: skip
            if now - parse_graph_time(comment["timestamp"]) > IG_PRIVATE_REPLY_WINDOW:
                return ig_error(400, "(#10) This comment is too old for a private reply (7 days).", 10,
                                subcode=2534025)  # fmt: skip
            user = comment["from"]
            conv = self._ig_conversation(user, now)
            message = self._ig_new_message(self._ig_brand(), user, text, now, conv)
            comment["_private_reply"] = message["id"]
            self._sent.append(SentRecord("instagram", "private_reply", text, message["id"],
                                         in_reply_to=comment["id"], recipient=user["id"]))  # fmt: skip
            return json_reply(200, {"recipient_id": user["id"], "message_id": message["id"]})
        users = {u["id"]: u for u in self._ig_state()["users"].values()}
        user = users.get(str(recipient.get("id")))
        conv = self._ig_state()["convs"].get(str(recipient.get("id")))
        if user is None or conv is None:
            return ig_error(400, "(#100) No matching user found", 100, subcode=2018001)
        last = conv["_last_user_message"]
        if last is None or now - last > IG_MESSAGE_WINDOW:
            return ig_error(400, "(#10) This message is sent outside of allowed window.", 10, subcode=2534022)
        message = self._ig_new_message(self._ig_brand(), user, text, now, conv)
        self._sent.append(SentRecord("instagram", "message", text, message["id"], recipient=user["id"]))
        return json_reply(200, {"recipient_id": user["id"], "message_id": message["id"]})

    # ----------------------------------------------------------------- webhooks
    def ig_delivery(self, object_ids: tuple[str, ...]) -> Json:
        """An Instagram webhook delivery (``object: instagram``) for these comments, mentions and DMs."""
        with self._lock:
            changes, messaging = [], []
            for object_id in object_ids:
                item = self._ig_object(object_id)
                if item is None:
                    raise KeyError(object_id)
                if "_conversation_id" in item:
                    messaging.append({
                        "sender": {"id": item["from"]["id"]}, "recipient": {"id": self.ig_user_id},
                        "timestamp": int(parse_graph_time(item["created_time"]).timestamp() * 1000),
                        "message": {"mid": object_id, "text": item["message"]},
                    })  # fmt: skip
                elif "_media_id" in item and self._ig_owned(item["_media_id"]):
                    value: Json = {"from": item["from"], "id": object_id, "text": item["text"],
                                   "media": item["media"]}  # fmt: skip
                    if item["_parent_id"]:
                        value["parent_id"] = item["_parent_id"]
                    changes.append({"field": "comments", "value": value})
                else:
                    media_id = item.get("_media_id", object_id)
                    value = {"media_id": media_id}
                    if "_media_id" in item:
                        value["comment_id"] = object_id
                    changes.append({"field": "mentions", "value": value})
            now = int(self.now().timestamp())
            entries: list[Json] = []
            if changes:
                entries.append({"id": self.ig_user_id, "time": now, "changes": changes})
            if messaging:
                entries.append({"id": self.ig_user_id, "time": now, "messaging": messaging})
            return {"object": "instagram", "entry": entries}

    def _ig_owned(self, media_id: str) -> bool:
        media = self._ig_object(media_id)
        return media is not None and media["owner"]["id"] == self.ig_user_id


def _braced(text: str) -> str:
    """What stands inside the first ``{…}`` of ``text``, nested braces kept (Graph's field expansion)."""
    begin = text.find("{")
    if begin < 0:
        return ""
    depth = 0
    for at in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        if depth == 0:
            return text[begin + 1 : at]
    return text[begin + 1 :]


def _newest(item: Json) -> tuple[str, int]:
    return item["timestamp"], int(item["id"]) if item["id"].isdigit() else 0


def ig_error(status: int, message: str, code: int, subcode: int | None = None) -> Reply:
    """An error in Graph's shape, as the Instagram endpoints answer it."""
    error: Json = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AsandboxIgTrace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return json_reply(status, {"error": error})


def ig_missing(object_id: str) -> Reply:
    """Graph's answer for an object that does not exist (or that the token may not see)."""
    return ig_error(
        400,
        f"Unsupported get request. Object with ID '{object_id[:60]}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation.",
        100,
        subcode=33,
    )
