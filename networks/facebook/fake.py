"""The sandbox's Graph API: page feed, comments, Messenger conversations and the Send API."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
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

# Calls per rolling hour that the sandbox app's X-App-Usage counts against (Graph's is 200 × users).
SANDBOX_APP_CALLS_PER_HOUR = 10_000


class GraphSandbox(SandboxCore):
    """Facebook's half of the sandbox."""

    # Percentages to report in X-App-Usage instead of the counted ones (tests script a busy app).
    fb_usage_override: dict[str, int] | None = None
    _fb_calls: list[float]  # when each Graph request came (sandbox clock), set on the first one

    def fb_app_usage(self) -> dict[str, int]:
        """The X-App-Usage percentages the next Graph response carries (calls in the last sandbox hour)."""
        with self._lock:
            if self.fb_usage_override is not None:
                return dict(self.fb_usage_override)
            now = self.now().timestamp()
            calls = [t for t in getattr(self, "_fb_calls", []) if t > now - 3600]
            self._fb_calls = calls
            pct = min(100, -(-len(calls) * 100 // SANDBOX_APP_CALLS_PER_HOUR))
            return {"call_count": pct, "total_time": pct, "total_cputime": pct}

    def _fb_user(self, name: str) -> Json:
        for user in self._fb_users.values():
            if user["name"] == name:
                return user
        digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)  # noqa: S324 (not security)
        user = {"id": str(10**15 + digest % (9 * 10**15)), "name": name}
        self._fb_users[user["id"]] = user
        return user

    def page_post_ids(self) -> list[str]:
        """Ids of the posts the page itself published, oldest first."""
        with self._lock:
            return [p["id"] for p in self._fb_posts if p["from"]["id"] == self.page_id]

    def add_fb_post(self, text: str, *, author: str | None = None, at: datetime | None = None, lang: str = "es") -> str:
        """Add a post on the page's feed (by the page when ``author`` is None, else a visitor post)."""
        del lang
        with self._lock:
            at = at or self.now()
            who = self._fb_users[self.page_id] if author is None else self._fb_user(author)
            number = self._fb_id()
            post = {
                "id": f"{self.page_id}_{number}",
                "message": text,
                "created_time": graph_time(at),
                "updated_time": graph_time(at),
                "from": dict(who),
                "permalink_url": f"https://www.facebook.com/{self.page_id}/posts/{number}/",
                "status_type": "mobile_status_update",
            }
            self._fb_posts.append(post)
            return str(post["id"])

    def _fb_object(self, object_id: str) -> Json | None:
        # Newest first: the object asked for is most often the one just added (webhooks, replies to it).
        for items in (self._fb_comments, self._fb_posts, self._messages):
            for item in reversed(items):
                if item["id"] == object_id:
                    return item
        return None

    def add_fb_comment(
        self,
        post_id: str,
        text: str,
        *,
        author: str | None = "Visitante",
        at: datetime | None = None,
        lang: str = "es",
        drop: tuple[str, ...] = (),
    ) -> str:
        """Add a comment on a post, or a reply when ``post_id`` is a comment id; return its id."""
        del lang
        with self._lock:
            who = self._fb_users[self.page_id] if author is None else self._fb_user(author)
            return str(self._new_comment(post_id, text, who, at=at, drop=drop)["id"])

    def _new_comment(
        self, target_id: str, text: str, who: Json, *, at: datetime | None = None, drop: tuple[str, ...] = ()
    ) -> Json:
        target = self._fb_object(target_id)
        if target is None or target_id.startswith("m_"):
            raise KeyError(target_id)
        parent = None
        if "_post_id" in target:  # a comment: Graph keeps threads one level deep
            parent = target if target.get("_parent_id") is None else self._fb_object(target["_parent_id"])
            post = self._fb_object(target["_post_id"])
        else:
            post = target
        assert post is not None
        at = at or self.now()
        post_number = post["id"].split("_")[-1]
        number = self._fb_id()
        permalink = f"https://www.facebook.com/{self.page_id}/posts/{post_number}/?comment_id="
        permalink += f"{parent['id'].split('_')[-1]}&reply_comment_id={number}" if parent else number
        comment: Json = {
            "id": f"{post_number}_{number}",
            "message": text,
            "created_time": graph_time(at),
            "from": dict(who),
            "permalink_url": permalink,
            "comment_count": 0,
            "like_count": 0,
            "_post_id": post["id"],
            "_parent_id": parent["id"] if parent else None,
        }
        if parent is not None:
            comment["parent"] = {k: parent[k] for k in ("created_time", "from", "message", "id")}
            parent["comment_count"] += 1
        post["updated_time"] = graph_time(at)  # Graph bumps a post's updated_time on new comments
        comment["_drop"] = list(drop)
        self._fb_comments.append(comment)
        return comment

    def _conversation(self, user: Json, at: datetime) -> Json:
        conv = self._conversations.get(user["id"])
        if conv is None:
            conv = {
                "id": f"t_{self._fb_id()}",
                "link": f"/{self.page_id}/inbox/{self._fb_id()}/",
                "message_count": 0,
                "snippet": "",
                "unread_count": 0,
                "updated_time": graph_time(at),
                "_user_id": user["id"],
                "_last_user_message": None,
            }
            self._conversations[user["id"]] = conv
        return conv

    def _new_message(self, sender: Json, recipient: Json, text: str, at: datetime, conv: Json) -> Json:
        message = {
            "id": "m_" + b64(f"{conv['id']}:{self._fb_id()}"),
            "message": text,
            "created_time": graph_time(at),
            "from": {**sender, "email": f"{sender['id']}@facebook.com"},
            "to": {"data": [{**recipient, "email": f"{recipient['id']}@facebook.com"}]},
            "_conversation_id": conv["id"],
        }
        self._messages.append(message)
        conv["message_count"] += 1
        conv["snippet"] = text[:100]
        conv["updated_time"] = graph_time(at)
        return message

    def add_fb_message(
        self, text: str, *, author: str = "Cliente Messenger", at: datetime | None = None, lang: str = "es"
    ) -> str:
        """Add a Messenger message from ``author`` to the page; return the message id."""
        del lang
        with self._lock:
            at = at or self.now()
            user = self._fb_user(author)
            conv = self._conversation(user, at)
            conv["unread_count"] += 1
            conv["_last_user_message"] = at
            return str(self._new_message(user, self._fb_users[self.page_id], text, at, conv)["id"])

    def add_fb_page_message(self, text: str, *, to: str, at: datetime | None = None) -> str:
        """Add a Messenger message from the page to ``to`` (a person's name), without recording it as sent."""
        with self._lock:
            at = at or self.now()
            user = self._fb_user(to)
            conv = self._conversation(user, at)
            return str(self._new_message(self._fb_users[self.page_id], user, text, at, conv)["id"])

    def _graph(self, method: str, path: str, params: dict[str, str], fault: Fault | None) -> Reply:
        with self._lock:
            if not hasattr(self, "_fb_calls"):
                self._fb_calls = []
            self._fb_calls.append(self.now().timestamp())
        # Every Graph answer, errors included, says how much of the app's hourly quota is used.
        usage = json.dumps(self.fb_app_usage(), separators=(",", ":"))
        return with_headers(self._graph_reply(method, path, params, fault), {"x-app-usage": usage})

    def _graph_reply(self, method: str, path: str, params: dict[str, str], fault: Fault | None) -> Reply:
        token = params.get("access_token", "")
        if token not in self.fb_tokens:
            return _graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if self.fb_app_secret is not None:
            proof = hmac.new(self.fb_app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if params.get("appsecret_proof") != proof:
                return _graph_error(400, "Invalid appsecret_proof provided in the API argument", 100)
        if fault is not None and fault.kind == "status":
            if fault.status == 429:
                return _graph_error(400, "(#4) Application request limit reached", 4, transient=True)
            if fault.status in (401, 403):
                return _graph_error(400, "Error validating access token: Session has expired", 190)
            return _graph_error(
                fault.status, "An unexpected error has occurred. Please retry your request later.", 2, True
            )
        segments = path.split("/")
        with self._lock:
            if method == "POST":
                return self._graph_post(segments, params)
            try:
                return self._graph_get(segments, params)
            except CursorRefused as exc:
                return _graph_error(400, f"(#100) The after cursor {exc} is invalid or has expired", 100)

    def _graph_get(self, segments: list[str], params: dict[str, str]) -> Reply:
        if segments == [""]:
            return self._graph_multi(params)
        node = self.page_id if segments[0] == "me" else segments[0]
        edge = segments[1] if len(segments) > 1 else None
        if edge is None:
            if node == self.page_id:
                return json_reply(
                    200,
                    pick({"id": self.page_id, "name": self.page_name}, fields(params.get("fields"), ("id", "name"))),
                )
            found = self._fb_object(node)
            if found is None:
                return _graph_missing(node)
            return json_reply(200, pick(found, fields(params.get("fields"), ("created_time", "message", "id"))))
        if node == self.page_id and edge in ("feed", "posts", "visitor_posts"):
            posts = [
                p for p in self._fb_posts if edge == "feed" or (edge == "posts") == (p["from"]["id"] == self.page_id)
            ]
            # Graph lists a feed newest first by created_time (a backdated post sorts by its own time).
            posts = sorted(posts, key=lambda p: (parse_graph_time(p["created_time"]), _number(p["id"])), reverse=True)
            posts = since_until(posts, params)
            return json_reply(200, self._graph_page(posts, params, ("created_time", "message", "id")))
        if node == self.page_id and edge == "conversations":
            convs = sorted(self._conversations.values(), key=lambda c: c["updated_time"], reverse=True)
            if params.get("user_id"):  # Graph filters a page's conversations by the user's page-scoped id
                convs = [c for c in convs if c["_user_id"] == params["user_id"]]
            return json_reply(200, self._graph_page(convs, params, ("id", "link", "updated_time")))
        if edge == "comments" and self._fb_object(node) is not None:
            return json_reply(
                200,
                self._graph_page(self._comments_of(node, params), params, ("created_time", "from", "message", "id")),
            )
        if edge == "messages" and node.startswith("t_"):
            messages = [m for m in reversed(self._messages) if m["_conversation_id"] == node]
            return json_reply(200, self._graph_page(messages, params, ("id", "created_time")))
        return _graph_missing(node if edge is None else f"{node}/{edge}")

    def _graph_multi(self, params: dict[str, str]) -> Reply:
        """``GET /?ids=a,b&fields=…``: one object per id, keyed by id, with field expansion of ``comments``."""
        ids = [i for i in params.get("ids", "").split(",") if i]
        if not ids:
            return _graph_error(400, "(#100) The parameter ids is required", 100)
        if len(ids) > MULTI_ID_MAX:
            return _graph_error(400, f"(#100) Too many IDs. Maximum: {MULTI_ID_MAX}", 100)
        missing = [i for i in ids if self._fb_object(i) is None]
        if missing:
            # Graph refuses the whole read when any id names nothing (deleted, hidden, never existed).
            return _graph_error(400, f"(#100) Some of the aliases you requested do not exist: {','.join(missing)}", 100)
        wanted = _expansions(params.get("fields", ""))
        out: Json = {}
        for object_id in ids:
            found = self._fb_object(object_id)
            assert found is not None
            plain = {name for name in wanted if name != "comments"}
            body = pick(found, plain | {"id"} if wanted else {"created_time", "message", "id"})
            if "comments" in wanted:
                mods, sub = wanted["comments"]
                edge = {**mods, "fields": sub, "access_token": params.get("access_token", "")}
                try:
                    page = self._graph_page(
                        self._comments_of(object_id, edge), edge, ("created_time", "from", "message", "id")
                    )
                except CursorRefused as exc:
                    return _graph_error(400, f"(#100) The after cursor {exc} is invalid or has expired", 100)
                if page["data"]:  # Graph leaves an empty edge out of an expanded object
                    body["comments"] = page
            out[object_id] = body
        return json_reply(200, out)

    def _comments_of(self, node: str, params: dict[str, str]) -> list[Json]:
        stream = params.get("filter") == "stream"
        if node.count("_") == 1 and node.split("_")[0] == self.page_id:  # a post
            items = [c for c in self._fb_comments if c["_post_id"] == node and (stream or not c["_parent_id"])]
        else:
            items = [c for c in self._fb_comments if c["_parent_id"] == node]
        items = sorted(items, key=lambda c: (c["created_time"], int(c["id"].split("_")[-1])))
        if params.get("order") == "reverse_chronological":
            items.reverse()
        return since_until(items, params)

    def _graph_page(self, items: list[Json], params: dict[str, str], default: tuple[str, ...]) -> Json:
        limit = read_number(params.get("limit", "")) or 25
        limit = max(1, min(limit, 100))
        start = 0
        after = unb64(params.get("after", "")) if params.get("after") else ""
        if params.get("after"):
            ids = [i["id"] for i in items]
            if after not in ids:
                # An expired or foreign cursor is refused, never silently an empty (and final) page.
                raise CursorRefused(params["after"])
            start = ids.index(after) + 1
        page, more = items[start : start + limit], len(items) > start + limit
        names = fields(params.get("fields"), default)
        out: Json = {"data": [pick(i, names) for i in page]}
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

    def _graph_post(self, segments: list[str], params: dict[str, str]) -> Reply:
        page = self._fb_users[self.page_id]
        if segments == ["me", "messages"] or segments == [self.page_id, "messages"]:
            return self._graph_send_message(params)
        if len(segments) == 2 and segments[1] == "comments":
            message = params.get("message", "")
            if not message.strip():
                return _graph_error(400, "(#100) Missing message or attachment", 100)
            try:
                comment = self._new_comment(segments[0], message, page)
            except KeyError:
                return _graph_missing(segments[0])
            self._sent.append(SentRecord("facebook", "comment", message, comment["id"], in_reply_to=segments[0]))
            return json_reply(200, {"id": comment["id"]})
        return _graph_error(400, f"Unsupported post request. Object with ID '{segments[0]}' does not exist", 100)

    def _graph_send_message(self, params: dict[str, str]) -> Reply:
        try:
            recipient = json.loads(params.get("recipient", ""))["id"]
            text = json.loads(params.get("message", ""))["text"]
        except (ValueError, KeyError, TypeError):
            return _graph_error(400, "(#100) param recipient and message must be JSON objects", 100)
        user = self._fb_users.get(str(recipient))
        conv = self._conversations.get(str(recipient))
        if user is None or conv is None:
            return _graph_error(400, "(#100) No matching user found", 100, subcode=2018001)
        last = conv["_last_user_message"]
        if params.get("messaging_type", "RESPONSE") == "RESPONSE" and (
            last is None or self.now() - last > MESSENGER_WINDOW
        ):
            return _graph_error(
                400,
                "(#10) This message is sent outside of allowed window.",
                10,
                subcode=2018278,
            )
        message = self._new_message(self._fb_users[self.page_id], user, text, self.now(), conv)
        self._sent.append(SentRecord("facebook", "message", text, message["id"], recipient=user["id"]))
        return json_reply(200, {"recipient_id": user["id"], "message_id": message["id"]})

    # ----------------------------------------------------------------- Page webhooks
    def fb_page_delivery(self, object_ids: tuple[str, ...]) -> Json:
        """A Page webhook delivery (``object: page``) announcing these posts, comments and messages as added."""
        with self._lock:
            changes, messaging = [], []
            for object_id in object_ids:
                item = self._fb_object(object_id)
                if item is None:
                    raise KeyError(object_id)
                at = int(parse_graph_time(item["created_time"]).timestamp())
                who = {"id": item["from"]["id"], "name": item["from"]["name"]}
                if object_id.startswith("m_"):
                    recipient = item["to"]["data"][0]["id"]
                    messaging.append(
                        {
                            "sender": {"id": who["id"]},
                            "recipient": {"id": recipient},
                            "timestamp": at * 1000,
                            "message": {"mid": object_id, "text": item["message"]},
                        }
                    )
                elif "_post_id" in item:
                    value = {
                        "item": "comment", "verb": "add", "post_id": item["_post_id"], "comment_id": object_id,
                        "parent_id": item["_parent_id"] or item["_post_id"], "message": item["message"],
                        "created_time": at, "from": who,
                    }  # fmt: skip
                    changes.append({"field": "feed", "value": value})
                else:
                    value = {
                        "item": "status", "verb": "add", "post_id": object_id, "message": item["message"],
                        "created_time": at, "from": who, "published": 1,
                    }  # fmt: skip
                    changes.append({"field": "feed", "value": value})
            now = self.now()
            entries: list[Json] = []
            if changes:
                entries.append({"id": self.page_id, "time": int(now.timestamp()), "changes": changes})
            if messaging:
                entries.append({"id": self.page_id, "time": int(now.timestamp() * 1000), "messaging": messaging})
            return {"object": "page", "entry": entries}


# Graph's most ids in one multi-id read.
MULTI_ID_MAX = 50


def _number(object_id: str) -> int:
    tail = object_id.split("_")[-1]
    return int(tail) if tail.isdigit() else 0


def _expansions(param: str) -> dict[str, tuple[dict[str, str], str]]:
    """``a,comments.since(1).limit(5){id,message}`` → {name: (modifiers, nested fields)} (Graph field expansion)."""
    out: dict[str, tuple[dict[str, str], str]] = {}
    depth, part, parts = 0, "", []
    for ch in param + ",":
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(part.strip())
            part = ""
        else:
            part += ch
    for raw in filter(None, parts):
        sub = ""
        if raw.endswith("}") and "{" in raw:
            raw, sub = raw[: raw.index("{")], raw[raw.index("{") + 1 : -1]
        name, *rest = raw.split(".")
        mods: dict[str, str] = {}
        for mod in rest:
            if "(" in mod and mod.endswith(")"):
                key, value = mod[:-1].split("(", 1)
                mods[key] = value
        out[name.strip()] = (mods, sub)
    return out


def _graph_error(status: int, message: str, code: int, transient: bool = False, subcode: int | None = None) -> Reply:
    error: Json = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AsandboxTrace"}
    if transient:
        error["is_transient"] = True
    if subcode is not None:
        error["error_subcode"] = subcode
    return json_reply(status, {"error": error})


def _graph_missing(object_id: str) -> Reply:
    return _graph_error(
        400,
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation.",
        100,
        subcode=33,
    )
