"""The sandbox's X API v2: users, tweets, DM events, timelines with since_id paging, posting replies."""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from networks.fake import (
    X_LIMITS,
    X_TIMELINE_DEPTH,
    X_WINDOW_SECONDS,
    Json,
    Reply,
    SandboxCore,
    SentRecord,
    b64,
    fields,
    json_reply,
    pick,
    read_number,
    unb64,
    with_headers,
    x_time,
)


class XSandbox(SandboxCore):
    """X's half of the sandbox."""

    def _add_x_user(
        self, username: str, *, name: str = "", user_id: str | None = None, followers: int | None = None
    ) -> Json:
        known = self._x_user_named(username)
        if known is not None:
            return known
        digest = int(hashlib.sha1(username.lower().encode()).hexdigest(), 16)  # noqa: S324 (not security)
        uid = user_id or str(10**17 + digest % (9 * 10**17))
        user = {
            "id": uid,
            "name": name or username.replace("_", " ").title(),
            "username": username,
            "created_at": "2015-03-02T10:00:00.000Z",
            "description": "",
            "protected": False,
            "verified": False,
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{uid}/normal.jpg",
            "url": "",
            "public_metrics": {
                "followers_count": followers if followers is not None else digest % 5000,
                "following_count": digest % 700,
                "tweet_count": digest % 20000,
                "listed_count": digest % 30,
            },
        }
        self._x_users[uid] = user
        return user

    def reset_rate_limits(self) -> None:
        """End every X rate-limit window now, as 15 minutes of real time would (for tests that script a day)."""
        with self._lock:
            self._x_windows.clear()

    def _x_user_named(self, username: str) -> Json | None:
        """The user with this handle (case-insensitive), through an index rebuilt when users change."""
        index: dict[str, Json] = getattr(self, "_users_by_name", {})
        if len(index) != len(self._x_users):
            index = {u["username"].lower(): u for u in self._x_users.values()}
            self._users_by_name = index
        return index.get(username.lower())

    def _mentions(self, text: str) -> list[Json]:
        found = []
        for m in re.finditer(r"@(\w{1,15})", text):
            mention: Json = {"start": m.start(), "end": m.end(), "username": m.group(1)}
            user = self._x_user_named(m.group(1))
            if user is not None:
                mention["id"] = user["id"]
            found.append(mention)
        return found

    def _new_tweet(
        self,
        text: str,
        author: Json,
        *,
        lang: str,
        at: datetime | None,
        reply_to: Json | None = None,
        quote_of: Json | None = None,
        search: bool = False,
    ) -> Json:
        at = at or self.now()
        tid = self._x_id(at)
        tweet: Json = {
            "id": tid,
            "text": text,
            "edit_history_tweet_ids": [tid],
            "created_at": x_time(at),
            "author_id": author["id"],
            "conversation_id": reply_to["conversation_id"] if reply_to else tid,
            "lang": lang,
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0},
            "_search": search,
        }
        mentions = self._mentions(text)
        if mentions:
            tweet["entities"] = {"mentions": mentions}
        refs = []
        if quote_of is not None:
            refs.append({"type": "quoted", "id": quote_of["id"]})
        if reply_to is not None:
            refs.append({"type": "replied_to", "id": reply_to["id"]})
            tweet["in_reply_to_user_id"] = reply_to["author_id"]
            reply_to["public_metrics"]["reply_count"] += 1
        if refs:
            tweet["referenced_tweets"] = refs
        self._tweets.append(tweet)
        return tweet

    def _tweet(self, tweet_id: str) -> Json | None:
        self._x_index()
        return self._tweets_by_id.get(str(tweet_id))

    @property
    def served_ids(self) -> list[str]:
        """Ids of every tweet the mention and search timelines served, in order (repeats included)."""
        if not hasattr(self, "_served_ids"):
            self._served_ids: list[str] = []
        return self._served_ids

    def _x_index(self) -> None:
        """Index tweets added since the last call (by id, by mentioned handle), so reads stay fast at 100k."""
        if not hasattr(self, "_indexed"):
            self._indexed = 0
            self._tweets_by_id: dict[str, Json] = {}
            self._mentioning: dict[str, list[Json]] = {}
            self._search_hits: dict[str, tuple[int, list[Json]]] = {}
        for tweet in self._tweets[self._indexed :]:
            self._tweets_by_id[tweet["id"]] = tweet
            for handle in {m["username"].lower() for m in (tweet.get("entities") or {}).get("mentions", [])}:
                self._mentioning.setdefault(handle, []).append(tweet)
        self._indexed = len(self._tweets)

    def _x_search_index(self, query: str) -> list[Json]:
        """The tweets recent search matches for ``query``, oldest first, extended incrementally."""
        self._x_index()
        scanned, hits = self._search_hits.get(query, (0, []))
        hits.extend(t for t in self._tweets[scanned:] if self._x_search_matches(t, query))
        self._search_hits[query] = (len(self._tweets), hits)
        return hits

    def add_mention(
        self,
        text: str,
        *,
        author: str = "cliente_feliz",
        lang: str = "es",
        followers: int | None = None,
        in_reply_to: str | None = None,
        at: datetime | None = None,
        extra: Json | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """Add a tweet that mentions the brand (prefixing ``@brand`` if missing); return its id.

        ``extra``/``drop`` override or remove fields to make malformed items for tests.
        """
        with self._lock:
            if f"@{self.brand_username.lower()}" not in text.lower():
                text = f"@{self.brand_username} {text}"
            user = self._add_x_user(author, followers=followers)
            parent = self._tweet(in_reply_to) if in_reply_to else None
            tweet = self._new_tweet(text, user, lang=lang, at=at, reply_to=parent)
            tweet.update(extra or {})
            tweet["_drop"] = list(drop)
            return str(tweet["id"])

    def add_search_hit(
        self,
        text: str,
        *,
        author: str = "alguien",
        lang: str = "es",
        followers: int | None = None,
        quote_brand_tweet: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Add a tweet that recent search matches whatever the query; return its id."""
        with self._lock:
            user = self._add_x_user(author, followers=followers)
            quoted = self._tweet(quote_brand_tweet) if quote_brand_tweet else None
            return str(self._new_tweet(text, user, lang=lang, at=at, quote_of=quoted, search=True)["id"])

    def add_brand_tweet(self, text: str, *, at: datetime | None = None, in_reply_to: str | None = None) -> str:
        """Add a tweet by the brand itself (an announcement, or a reply to ``in_reply_to``); return its id.

        Unlike a reply posted through the API, it is not recorded as sent.
        """
        with self._lock:
            brand = self._x_users[self.brand_user_id]
            parent = self._tweet(in_reply_to) if in_reply_to else None
            if in_reply_to and parent is None:
                raise KeyError(in_reply_to)
            return str(self._new_tweet(text, brand, lang="es", at=at, reply_to=parent)["id"])

    def add_brand_dm(self, text: str, *, to: str, at: datetime | None = None) -> str:
        """Add a direct message from the brand to the user ``to`` (a handle), without recording it as sent."""
        with self._lock:
            user = self._add_x_user(to)
            at = at or self.now()
            event = {
                "id": self._x_id(at),
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": self.brand_user_id,
                "dm_conversation_id": self._dm_conversation(user["id"], self.brand_user_id),
                "created_at": x_time(at),
            }
            self._dm_events.append(event)
            return str(event["id"])

    def _dm_conversation(self, a: str, b: str) -> str:
        lo, hi = sorted((a, b), key=int)
        return f"{lo}-{hi}"

    def add_dm(
        self,
        text: str,
        *,
        author: str = "cliente_dm",
        followers: int | None = None,
        at: datetime | None = None,
        lang: str = "es",
    ) -> str:
        """Add a direct message from ``author`` to the brand; return the DM event id."""
        del lang  # X does not report a language for DM events
        with self._lock:
            user = self._add_x_user(author, followers=followers)
            at = at or self.now()
            event = {
                "id": self._x_id(at),
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": user["id"],
                "dm_conversation_id": self._dm_conversation(user["id"], self.brand_user_id),
                "created_at": x_time(at),
            }
            self._dm_events.append(event)
            return str(event["id"])

    def _x_auth(self, headers: dict[str, str], *, user_context: bool) -> Reply | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            if auth.removeprefix("Bearer ") not in self.x_tokens:
                return _x_problem(401, "Unauthorized", "Unauthorized")
            if user_context:
                return json_reply(
                    403,
                    {
                        "title": "Unsupported Authentication",
                        "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this "
                        "endpoint.  Supported authentication types are [OAuth 1.0a User Context, "
                        "OAuth 2.0 User Context].",
                        "type": "https://api.twitter.com/2/problems/unsupported-authentication",
                        "status": 403,
                    },
                )
            return None
        token = re.search(r'oauth_token="([^"]*)"', auth)
        if auth.startswith("OAuth ") and token and unquote(token.group(1)) in self.x_tokens:
            return None
        return _x_problem(401, "Unauthorized", "Unauthorized")

    def _x_headers(self, endpoint: str, *, exhausted_for: int | None = None) -> tuple[dict[str, str], bool]:
        """Count one request against the endpoint's window; return the headers and whether it is over."""
        now = int(time.time())
        with self._lock:
            reset, used = self._x_windows.get(endpoint, (now + X_WINDOW_SECONDS, 0))
            if reset <= now:
                reset, used = now + X_WINDOW_SECONDS, 0
            limit = X_LIMITS[endpoint] * int(getattr(self, "x_limit_scale", 1))
            if exhausted_for is not None:
                reset, used = now + exhausted_for, limit
            over = used >= limit
            used = min(limit, used + 1)
            self._x_windows[endpoint] = (reset, used)
        remaining = 0 if over else limit - used
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(reset),
        }
        return headers, over

    def _x_route(self, method: str, path: str) -> tuple[str, bool, re.Match[str] | None] | None:
        routes = [
            ("GET", r"/2/users/me", "me", True),
            ("GET", r"/2/users/(\d+)/mentions", "mentions", False),
            ("GET", r"/2/tweets/search/recent", "search", False),
            ("GET", r"/2/users/(\d+)/tweets", "user_tweets", False),
            ("GET", r"/2/dm_events", "dm_events", True),
            ("GET", r"/2/dm_conversations/with/(\d+)/dm_events", "dm_conversation_events", True),
            ("POST", r"/2/tweets", "tweet", True),
            ("POST", r"/2/dm_conversations/with/(\d+)/messages", "dm", True),
        ]
        for verb, pattern, name, user_context in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return name, user_context, match
        return None

    def _x(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: bytes, fault: Any
    ) -> Reply:
        route = self._x_route(method, path)
        if route is None:
            return _x_problem(404, "Not Found Error", f"Could not find the route {path}")
        name, user_context, match = route
        denied = self._x_auth(headers, user_context=user_context)
        if denied is not None:
            return denied
        exhausted = fault.retry_after if fault is not None and fault.status == 429 else None
        limit_headers, over = self._x_headers(name, exhausted_for=exhausted)
        if over:
            return with_headers(_x_problem(429, "Too Many Requests", "Too Many Requests"), limit_headers)
        if fault is not None and fault.kind == "status":
            reason = HTTPStatus(fault.status).phrase
            return with_headers(_x_problem(fault.status, reason, reason), limit_headers)
        with self._lock:
            if name == "me":
                reply = json_reply(200, {"data": pick(self._x_users[self.brand_user_id], {"id", "name", "username"})})
            elif name == "user_tweets":
                assert match is not None
                reply = self._x_user_tweets(match.group(1), params)
            elif name in ("mentions", "search"):
                reply = self._x_timeline(name, params, match)
            elif name == "dm_events":
                reply = self._x_dm_events(params)
            elif name == "dm_conversation_events":
                assert match is not None
                reply = self._x_dm_events(params, participant_id=match.group(1))
            elif (payload := _json_object(body)) is None:
                reply = _x_invalid("body", body[:40].decode("utf-8", "replace"), "must be a JSON object")
            elif name == "tweet":
                reply = self._x_post_tweet(payload)
            else:
                assert match is not None
                reply = self._x_post_dm(match.group(1), payload)
        return with_headers(reply, limit_headers)

    def _x_search_matches(self, tweet: Json, query: str) -> bool:
        if tweet.get("_search"):
            return True
        terms = [
            t.strip('"()').lower()
            for t in query.split()
            if t.upper() != "OR" and ":" not in t and not t.startswith("-")
        ]
        text = str(tweet.get("text", "")).lower()
        return any(t and t in text for t in terms)

    def _x_timeline(self, name: str, params: dict[str, str], match: re.Match[str] | None) -> Reply:
        low = 5 if name == "mentions" else 10
        max_results = params.get("max_results", "10")
        if not low <= (read_number(max_results) or -1) <= 100:
            return _x_invalid("max_results", max_results, f"is not between {low} and 100")
        if name == "mentions":
            assert match is not None
            user = self._x_users.get(match.group(1))
            # Like X, the mention timeline follows the parsed @-mentions, not a text search.
            self._x_index()
            items = self._mentioning.get(user["username"].lower(), []) if user else []
            token_param = "pagination_token"  # noqa: S105
        else:
            if not params.get("query"):
                return _x_invalid("query", "", "is required")
            items = self._x_search_index(params["query"])
            token_param = "next_token"  # noqa: S105
        page = self._x_page_sorted(items, params, token_param, int(max_results), self._tweet_view)
        self.served_ids.extend(t["id"] for t in page.get("data", []))
        return json_reply(200, page)

    def _x_page_sorted(
        self,
        oldest_first: list[Json],
        params: dict[str, str],
        token_param: str,
        max_results: int,
        view: Callable[[Json, dict[str, str]], Json],
    ) -> Json:
        """``_x_page`` over a list in id order, found by bisection instead of a scan."""
        since = read_number(params.get("since_id", "")) or 0
        until = read_number(params.get("until_id", ""))
        token = unb64(params.get(token_param, ""))
        before = read_number(token)
        bounds = [b for b in (until, before) if b is not None]
        lo = bisect.bisect_right(oldest_first, since, key=lambda t: int(t["id"]))
        hi = bisect.bisect_left(oldest_first, min(bounds), key=lambda t: int(t["id"])) if bounds else len(oldest_first)
        start = max(lo, hi - max_results)
        newest_first = oldest_first[start:hi][::-1]
        return self._x_page(newest_first, {**params, token_param: "", "until_id": "", "since_id": ""}, token_param,
                            max_results, view, more=start > lo)  # fmt: skip

    def _tweet_view(self, tweet: Json, params: dict[str, str]) -> Json:
        return pick(tweet, fields(params.get("tweet.fields"), ()) | {"id", "text", "edit_history_tweet_ids"})

    def _x_page(
        self,
        newest_first: list[Json],
        params: dict[str, str],
        token_param: str,
        max_results: int,
        view: Callable[[Json, dict[str, str]], Json],
        *,
        more: bool = False,
    ) -> Json:
        since = read_number(params.get("since_id", "")) or 0
        until = read_number(params.get("until_id", ""))
        token = unb64(params.get(token_param, ""))
        before = read_number(token)
        items = [
            t
            for t in newest_first
            if int(t["id"]) > since
            and (until is None or int(t["id"]) < until)
            and (before is None or int(t["id"]) < before)
        ]
        page, rest = items[:max_results], items[max_results:]
        meta: Json = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if rest or (more and page):
            meta["next_token"] = b64(page[-1]["id"])
        out: Json = {}
        if page:
            out["data"] = [view(t, params) for t in page]
            includes = self._x_includes(page, params)
            if includes:
                out["includes"] = includes
        out["meta"] = meta
        return out

    def _x_includes(self, page: list[Json], params: dict[str, str]) -> Json:
        expansions = set(filter(None, params.get("expansions", "").split(",")))
        user_ids: list[str] = []
        tweets: list[Json] = []
        for item in page:
            if "author_id" in expansions and item.get("author_id"):
                user_ids.append(item["author_id"])
            if "sender_id" in expansions and item.get("sender_id"):
                user_ids.append(item["sender_id"])
            if "in_reply_to_user_id" in expansions and item.get("in_reply_to_user_id"):
                user_ids.append(item["in_reply_to_user_id"])
            if "referenced_tweets.id" in expansions:
                for ref in item.get("referenced_tweets", []):
                    found = self._tweet(ref["id"])
                    if found is not None:
                        tweets.append(self._tweet_view(found, params))
                        if "referenced_tweets.id.author_id" in expansions:
                            user_ids.append(found["author_id"])
        includes: Json = {}
        user_fields = fields(params.get("user.fields"), ()) | {"id", "name", "username"}
        users = [pick(self._x_users[u], user_fields) for u in dict.fromkeys(user_ids) if u in self._x_users]
        if users:
            includes["users"] = users
        if tweets:
            includes["tweets"] = list({t["id"]: t for t in tweets}.values())
        return includes

    def _x_user_tweets(self, user_id: str, params: dict[str, str]) -> Reply:
        """``GET /2/users/:id/tweets``: the user's tweets newest first, within X's 3200 and the time bounds."""
        max_results = params.get("max_results", "10")
        if not 5 <= (read_number(max_results) or -1) <= 100:
            return _x_invalid("max_results", max_results, "is not between 5 and 100")
        bounds: dict[str, datetime | None] = {}
        for name in ("start_time", "end_time"):
            value = params.get(name)
            try:
                bound = datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
                bounds[name] = bound.replace(tzinfo=UTC) if bound is not None and bound.tzinfo is None else bound
            except ValueError:
                return _x_invalid(name, value or "", "is not a valid RFC 3339 date-time")
        start, end = bounds["start_time"], bounds["end_time"]
        if (start or end) and (params.get("since_id") or params.get("until_id")):
            return _x_invalid(
                "since_id", params.get("since_id") or params.get("until_id", ""),
                "cannot be used in conjunction with 'start_time' or 'end_time'",
            )  # fmt: skip
        exclude = set(filter(None, params.get("exclude", "").split(",")))
        # X serves only the most recent 3200 tweets of a user's timeline, whatever the bounds.
        own = [t for t in self._tweets if t["author_id"] == user_id][-X_TIMELINE_DEPTH:]

        def keep(tweet: Json) -> bool:
            # Timestamps have second granularity and both bounds are inclusive.
            at = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00")).replace(microsecond=0)
            refs = {r["type"] for r in tweet.get("referenced_tweets", [])}
            return (
                (start is None or at >= start)
                and (end is None or at <= end)
                and not ("replies" in exclude and "replied_to" in refs)
                and not ("retweets" in exclude and "retweeted" in refs)
            )

        newest_first = [t for t in reversed(own) if keep(t)]
        page = self._x_page(newest_first, params, "pagination_token", int(max_results), self._tweet_view)
        return json_reply(200, page)

    def _x_dm_events(self, params: dict[str, str], *, participant_id: str | None = None) -> Reply:
        """``GET /2/dm_events``, or one conversation's events (``/2/dm_conversations/with/:id/dm_events``)."""
        max_results = params.get("max_results", "100")
        if not 1 <= (read_number(max_results) or -1) <= 100:
            return _x_invalid("max_results", max_results, "is not between 1 and 100")
        types = set(params.get("event_types", "MessageCreate").split(","))
        conversation = None
        if participant_id is not None:
            if participant_id not in self._x_users:
                return _x_invalid("participant_id", participant_id, "is not a valid user")
            conversation = self._dm_conversation(participant_id, self.brand_user_id)
        events = [
            e
            for e in reversed(self._dm_events)
            if e["event_type"] in types and (conversation is None or e["dm_conversation_id"] == conversation)
        ]

        def view(event: Json, params: dict[str, str]) -> Json:
            return pick(event, fields(params.get("dm_event.fields"), ()) | {"id", "event_type", "text"})

        page = self._x_page(events, params, "pagination_token", int(max_results), view)
        page["meta"].pop("newest_id", None)  # the DM endpoint reports result_count and tokens only
        page["meta"].pop("oldest_id", None)
        return json_reply(200, page)

    def _reply_allowed(self, target: Json) -> bool:
        # X (Feb 2026): self-serve apps may reply only where the brand is mentioned, quoted or already talking.
        if target["author_id"] == self.brand_user_id:
            return True
        if f"@{self.brand_username.lower()}" in str(target.get("text", "")).lower():
            return True
        for ref in target.get("referenced_tweets", []):
            quoted = self._tweet(ref["id"])
            if ref["type"] == "quoted" and quoted and quoted["author_id"] == self.brand_user_id:
                return True
        return False

    def _x_post_tweet(self, body: Json) -> Reply:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _x_invalid("text", str(text), "must not be empty")
        reply = body.get("reply")
        reply_to_id = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        target = self._tweet(str(reply_to_id)) if reply_to_id else None
        if reply_to_id and target is None:
            return _x_invalid("reply.in_reply_to_tweet_id", str(reply_to_id), "does not exist")
        if target is not None and not self._reply_allowed(target):
            return _x_problem(
                403,
                "Forbidden",
                "Reply to this conversation is not allowed because you have not been mentioned or "
                "otherwise engaged by the author of the post you are replying to.",
            )
        brand = self._x_users[self.brand_user_id]
        tweet = self._new_tweet(text, brand, lang="und", at=None, reply_to=target)
        self._sent.append(SentRecord("x", "tweet", text, tweet["id"], in_reply_to=reply_to_id))
        return json_reply(201, {"data": {k: tweet[k] for k in ("edit_history_tweet_ids", "id", "text")}})

    def _x_post_dm(self, participant_id: str, body: Json) -> Reply:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _x_invalid("text", str(text), "must not be empty")
        if participant_id not in self._x_users:
            return _x_invalid("participant_id", participant_id, "is not a valid user")
        at = self.now()
        event = {
            "id": self._x_id(at),
            "event_type": "MessageCreate",
            "text": text,
            "sender_id": self.brand_user_id,
            "dm_conversation_id": self._dm_conversation(participant_id, self.brand_user_id),
            "created_at": x_time(at),
        }
        self._dm_events.append(event)
        self._sent.append(SentRecord("x", "dm", text, event["id"], recipient=participant_id))
        return json_reply(
            201, {"data": {"dm_conversation_id": event["dm_conversation_id"], "dm_event_id": event["id"]}}
        )

    # ----------------------------------------------------------------- Account Activity webhooks
    def _v1_user(self, user_id: str) -> Json:
        user = self._x_users.get(user_id) or {"id": user_id, "username": "", "name": ""}
        return {
            "id": int(user_id),
            "id_str": user_id,
            "name": user.get("name", ""),
            "screen_name": user.get("username", ""),
            "followers_count": (user.get("public_metrics") or {}).get("followers_count", 0),
            "verified": bool(user.get("verified")),
        }

    def x_activity(self, *, tweet_ids: tuple[str, ...] = (), dm_ids: tuple[str, ...] = ()) -> Json:
        """An Account Activity delivery for the brand carrying these tweets and DM events, in X's v1.1 shapes."""
        with self._lock:
            payload: Json = {"for_user_id": self.brand_user_id}
            tweets = []
            for tid in tweet_ids:
                tweet = self._tweet(tid)
                if tweet is None:
                    raise KeyError(tid)
                at = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00"))
                refs = {r["type"]: r["id"] for r in tweet.get("referenced_tweets", [])}
                mentions = (tweet.get("entities") or {}).get("mentions", [])
                tweets.append(
                    {
                        "created_at": at.strftime("%a %b %d %H:%M:%S +0000 %Y"),
                        "id": int(tid),
                        "id_str": tid,
                        "text": tweet["text"],
                        "user": self._v1_user(tweet["author_id"]),
                        "in_reply_to_status_id_str": refs.get("replied_to"),
                        "is_quote_status": "quoted" in refs,
                        "entities": {
                            "user_mentions": [
                                {"id_str": m.get("id"), "screen_name": m["username"], "indices": [m["start"], m["end"]]}
                                for m in mentions
                            ]
                        },
                        "lang": tweet.get("lang"),
                        "timestamp_ms": str(int(at.timestamp() * 1000)),
                    }
                )
            if tweets:
                payload["tweet_create_events"] = tweets
            events, users = [], {}
            for eid in dm_ids:
                # Newest first: a delivery announces the event just added (no index of every event per delivery).
                event = next((e for e in reversed(self._dm_events) if e["id"] == eid), None)
                if event is None:
                    raise KeyError(eid)
                at = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
                sender = event["sender_id"]
                recipient = next(p for p in event["dm_conversation_id"].split("-") if p != sender)
                events.append(
                    {
                        "type": "message_create",
                        "id": eid,
                        "created_timestamp": str(int(at.timestamp() * 1000)),
                        "message_create": {
                            "target": {"recipient_id": recipient},
                            "sender_id": sender,
                            "message_data": {"text": event["text"], "entities": {}},
                        },
                    }
                )
                users.update({uid: self._v1_user(uid) for uid in (sender, recipient)})
            if events:
                payload["direct_message_events"] = events
                payload["users"] = {uid: {**u, "id": uid} for uid, u in users.items()}
            return payload


def _x_problem(status: int, title: str, detail: str) -> Reply:
    return json_reply(status, {"title": title, "type": "about:blank", "status": status, "detail": detail})


def _json_object(body: bytes) -> Json | None:
    """A request body parsed as a JSON object, or None when it is not one (X answers 400 then)."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _x_invalid(parameter: str, value: str, problem: str) -> Reply:
    return json_reply(
        400,
        {
            "errors": [
                {
                    "parameters": {parameter: [value]},
                    "message": f"The `{parameter}` query parameter value [{value}] {problem}",
                }
            ],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )
