"""The sandbox's shared state, clock, ids and response helpers (see ``sandbox.server``)."""

from __future__ import annotations

import base64
import json
import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Well-known fake credentials the sandbox accepts; they open nothing outside this process.
SANDBOX_X_TOKEN = "sandbox-x-token"  # noqa: S105
SANDBOX_FB_TOKEN = "sandbox-fb-token"  # noqa: S105
TWITTER_EPOCH_MS = 1288834974657
X_WINDOW_SECONDS = 900


# Per-endpoint request caps per 15-minute window, as X documents them for a Basic app.
def read_number(value: str) -> int | None:
    """Return ``value`` as a network reads an id, a count or a limit, or None: ASCII digits only, at most 19.

    ``str.isdigit`` also accepts "²" and Python refuses ``int()`` of over 4,300 digits: either would be a 500.
    """
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 19 else None


X_LIMITS = {
    "me": 75,
    "mentions": 450,
    "search": 450,
    "dm_events": 300,
    "dm_conversation_events": 300,
    "tweet": 200,
    "user_tweets": 900,
    "dm": 200,
}
# ``GET /2/users/:id/tweets`` reaches back this many tweets at most, as X documents it.
X_TIMELINE_DEPTH = 3200
MESSENGER_WINDOW = timedelta(hours=24)

Reply = tuple[int, dict[str, str], bytes]
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SentRecord:
    """Something a client POSTed to the sandbox: a reply tweet, a DM, a comment or a Messenger message."""

    network: str
    kind: str
    text: str
    external_id: str
    in_reply_to: str | None = None
    recipient: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class Fault:
    kind: str  # "status" | "malformed" | "slow"
    remaining: int
    status: int = 500
    path_contains: str | None = None
    seconds: float = 0.0
    retry_after: int = 60


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def unb64(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def x_time(at: datetime) -> str:
    """Format a datetime the way X API v2 does (``2022-11-07T18:11:04.000Z``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def graph_time(at: datetime) -> str:
    """Format a datetime the way Graph API does (``2021-07-04T19:50:58+0000``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_graph_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


def unix_or_iso(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def fields(param: str | None, default: tuple[str, ...]) -> set[str]:
    """Top-level names of a ``fields``/``tweet.fields`` list, ignoring nested ``{...}`` and ``.limit()``."""
    if not param:
        return set(default)
    depth, name, names = 0, "", set()
    for ch in param + ",":
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == "," and depth == 0:
            names.add(name.split(".")[0].strip())
            name = ""
        elif depth == 0:
            name += ch
    return (names - {""}) | {"id"}


def pick(item: Json, names: set[str]) -> Json:
    # Keys starting with "_" are the sandbox's bookkeeping; "_drop" hides fields to fake malformed items.
    hidden = set(item.get("_drop", ()))
    return {k: v for k, v in item.items() if k in names and k not in hidden and not k.startswith("_")}


def json_reply(status: int, body: Json) -> Reply:
    """A JSON response with the content type both networks use."""
    return status, {"content-type": "application/json; charset=utf-8"}, json.dumps(body).encode()


def with_headers(reply: Reply, headers: dict[str, str]) -> Reply:
    """The same response with ``headers`` added."""
    return reply[0], {**reply[1], **headers}, reply[2]


class SandboxCore:
    """State of both sandbox networks behind one lock, with the sandbox clock and id generators."""

    def __init__(
        self,
        *,
        brand_username: str = "EscuchaHelp",
        brand_name: str = "Escucha Help",  # used by Sandbox for the brand account
        brand_user_id: str = "1072250532645998596",
        page_id: str = "102030405060708",
        page_name: str = "Escucha",
        x_tokens: tuple[str, ...] = (SANDBOX_X_TOKEN,),
        fb_tokens: tuple[str, ...] = (SANDBOX_FB_TOKEN,),
        fb_app_secret: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._clock_offset = timedelta(0)
        self.brand_username = brand_username
        self.brand_user_id = brand_user_id
        self.page_id = page_id
        self.page_name = page_name
        self.x_tokens = set(x_tokens)
        self.fb_tokens = set(fb_tokens)
        self.fb_app_secret = fb_app_secret
        self._last_x_id = 0
        self._fb_seq = 10158400000000000
        self._x_users: dict[str, Json] = {}
        self._tweets: list[Json] = []  # oldest first; ``_search`` marks hits the network matched for us
        self._dm_events: list[Json] = []
        self._fb_users: dict[str, Json] = {page_id: {"id": page_id, "name": page_name}}
        self._fb_posts: list[Json] = []
        self._fb_comments: list[Json] = []
        self._conversations: dict[str, Json] = {}  # by user id
        self._messages: list[Json] = []
        self._sent: list[SentRecord] = []
        self._faults: list[Fault] = []
        self._x_windows: dict[str, tuple[int, int]] = {}  # endpoint -> (reset, used)
        self.requests: list[str] = []  # "METHOD path" of every request, for tests counting calls

    def now(self) -> datetime:
        """The sandbox clock (real time plus whatever ``advance`` added)."""
        return datetime.now(UTC) + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (e.g. past Messenger's 24-hour window)."""
        with self._lock:
            self._clock_offset += timedelta(seconds=seconds)

    def _x_id(self, at: datetime) -> str:
        snowflake = (int(at.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22
        self._last_x_id = max(self._last_x_id + 1, snowflake)
        return str(self._last_x_id)

    def _fb_id(self) -> str:
        self._fb_seq += 1 + (self._fb_seq % 7)  # gaps like real object ids, still increasing
        return str(self._fb_seq)


class CursorRefused(Exception):
    """A Graph ``after`` cursor that names no item of the listing (expired, or from another listing)."""


def since_until(items: list[Json], params: dict[str, str], key: str = "created_time") -> list[Json]:
    """The items whose ``key`` time lies within the request's ``since`` and ``until`` (Graph's time filter)."""
    since = unix_or_iso(params["since"]) if params.get("since") else None
    until = unix_or_iso(params["until"]) if params.get("until") else None

    def keep(item: Json) -> bool:
        ts = parse_graph_time(item[key]).timestamp()
        return (since is None or ts >= since) and (until is None or ts <= until)

    return [i for i in items if keep(i)]
