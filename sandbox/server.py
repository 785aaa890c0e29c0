"""A loopback HTTP server speaking the subset of X API v2 and Graph API that Escucha uses.

The demo and the tests point the real tweepy and facebook-sdk clients at it (see ``networks.http``).
Responses copy the field names and shapes of the real recordings in ``shared/fixtures``; the server keeps
its state in memory behind one lock, records everything sent to it and can script faults.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from networks.facebook.fake import GraphSandbox
from networks.fake import SANDBOX_FB_TOKEN, SANDBOX_X_TOKEN, Fault, Reply, SentRecord, json_reply
from networks.instagram.fake import InstagramSandbox
from networks.x.fake import XSandbox
from sandbox.webhooks import WebhookFeed

__all__ = ["SANDBOX_FB_TOKEN", "SANDBOX_X_TOKEN", "Sandbox", "SentRecord"]

# The admin routes that add one item each (``POST /_sandbox/<route>`` with its keyword arguments as JSON);
# ``POST /_sandbox/add_many`` takes a list of them.
ADMIN_ADDS = frozenset(
    {
        "add_mention",
        "add_search_hit",
        "add_dm",
        "add_brand_dm",
        "add_fb_post",
        "add_fb_comment",
        "add_fb_message",
        "add_fb_page_message",
        "add_brand_tweet",
        "add_ig_media",
        "add_ig_comment",
        "add_ig_message",
    }
)


# What the sandbox's X app signs Account Activity deliveries (and answers CRC checks) with.
SANDBOX_X_CONSUMER_SECRET = "sandbox-consumer-secret"  # noqa: S105 - the loopback fake's own, not a real secret

# The adds a network announces by webhook once they are pushed to a receiver (``POST /_sandbox/webhooks``):
# X's Account Activity (mentions, DMs) and the Page's feed and Messenger. Keyword search has no webhook.
WEBHOOK_ADDS = {
    "add_mention": "x",
    "add_dm": "x",
    "add_fb_post": "facebook",
    "add_fb_comment": "facebook",
    "add_fb_message": "facebook",
}


class Sandbox(XSandbox, InstagramSandbox, GraphSandbox):
    """The sandbox networks: start it, point ``Settings.sandbox_url`` at ``url``, script it from tests."""

    def __init__(self, *, port: int = 0, brand_name: str = "Escucha Help", **kwargs: Any) -> None:
        super().__init__(brand_name=brand_name, **kwargs)
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._add_x_user(self.brand_username, name=brand_name, user_id=self.brand_user_id, followers=12000)
        # Multiplies X's per-window request caps; the ingest bench lifts them to measure our side alone.
        self.x_limit_scale = 1
        # Set by ``push_webhooks``: every new customer item is then also delivered to a receiver.
        self.webhook_feed: WebhookFeed | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Sandbox:
        """Start serving on 127.0.0.1 in a daemon thread."""
        if self._server is not None:
            return self
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop() fast; the thread only wakes to check for shutdown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (and stop pushing webhooks)."""
        if self.webhook_feed is not None:
            self.webhook_feed.stop()
            self.webhook_feed = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to put in ``Settings.sandbox_url``."""
        if self._server is None:
            raise RuntimeError("sandbox is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def settings_overrides(self, *, instagram: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``Settings`` that make the networks talk to this sandbox (Instagram on request)."""
        ig = {"instagram_user_id": self.ig_user_id, "instagram_username": self.ig_username,
              "instagram_page_id": self.page_id, "instagram_token": SANDBOX_FB_TOKEN,
              "instagram_app_secret": self.fb_app_secret}  # fmt: skip
        return ({**ig} if instagram else {}) | {
            "sandbox_url": self.url,
            "x_bearer_token": SANDBOX_X_TOKEN,
            "x_consumer_key": "sandbox-consumer-key",
            "x_consumer_secret": SANDBOX_X_CONSUMER_SECRET,
            "x_access_token": SANDBOX_X_TOKEN,
            "x_access_token_secret": "sandbox-access-secret",
            "x_brand_user_id": self.brand_user_id,
            "x_brand_username": self.brand_username,
            "x_search_query": self.page_name.lower(),
            "facebook_page_id": self.page_id,
            "facebook_page_token": SANDBOX_FB_TOKEN,
            "facebook_app_secret": self.fb_app_secret,
        }

    # ----------------------------------------------------------------- webhooks
    def push_webhooks(
        self, url: str, *, senders: int = 4, duplicate_rate: float = 0.0, reorder_rate: float = 0.0, seed: int = 0
    ) -> None:
        """From now on deliver every new mention, DM, Page post, comment and message to the receiver at ``url``."""
        if self.fb_app_secret is None:
            raise ValueError("the sandbox has no Facebook app secret to sign deliveries with")
        if self.webhook_feed is not None:
            self.webhook_feed.stop()
        self.webhook_feed = WebhookFeed(
            url.rstrip("/"), x_consumer_secret=SANDBOX_X_CONSUMER_SECRET, fb_app_secret=self.fb_app_secret,
            senders=senders, duplicate_rate=duplicate_rate, reorder_rate=reorder_rate, seed=seed,
        )  # fmt: skip

    def _announce(self, route: str, item_id: str) -> None:
        feed = self.webhook_feed
        network = WEBHOOK_ADDS.get(route)
        if feed is None or network is None:
            return
        if route == "add_mention":
            feed.enqueue(network, self.x_activity(tweet_ids=(item_id,)))
        elif route == "add_dm":
            feed.enqueue(network, self.x_activity(dm_ids=(item_id,)))
        else:
            feed.enqueue(network, self.fb_page_delivery((item_id,)))

    def webhook_counts(self) -> dict[str, Any]:
        """What the webhook feed did so far, and how many deliveries are still queued or in flight."""
        feed = self.webhook_feed
        if feed is None:
            return {"pushing": False}
        with feed._lock:
            counts = asdict(feed.counts)
        took = sorted(counts.pop("delivery_s"))

        def nearest(q: float) -> float | None:
            return round(took[max(0, math.ceil(q * len(took)) - 1)], 3) if took else None

        # From the item's addition to the receiver's 2xx: the network's queue and our receiver, before any stage.
        counts["delivery_s"] = {"p50": nearest(0.5), "p95": nearest(0.95), "max": nearest(1.0)}
        return {"pushing": True, "pending": feed.pending(), **counts}

    # ----------------------------------------------------------------- faults and records
    def fail_next(
        self, n: int = 1, *, status: int = 500, path_contains: str | None = None, retry_after: int = 60
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` in the network's own error shape."""
        with self._lock:
            self._faults.append(Fault("status", n, status=status, path_contains=path_contains, retry_after=retry_after))

    def malformed_next(self, n: int = 1, *, path_contains: str | None = None) -> None:
        """Answer the next ``n`` matching requests with 200 and a truncated JSON body."""
        with self._lock:
            self._faults.append(Fault("malformed", n, path_contains=path_contains))

    def slow_next(self, n: int = 1, *, seconds: float = 2.0, path_contains: str | None = None) -> None:
        """Delay the next ``n`` matching responses by ``seconds``."""
        with self._lock:
            self._faults.append(Fault("slow", n, seconds=seconds, path_contains=path_contains))

    def clear_faults(self) -> None:
        """Forget every scripted fault not yet used up."""
        with self._lock:
            self._faults.clear()

    @property
    def sent(self) -> list[SentRecord]:
        """Everything clients sent (tweets, DMs, comments, Messenger messages), oldest first."""
        with self._lock:
            return list(self._sent)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains is None or fault.path_contains in path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ----------------------------------------------------------------- dispatch
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one HTTP request (the server thread calls this; tests may too)."""
        try:
            return self._dispatch(method, target, headers, body)
        except Exception as exc:  # a sandbox bug must look like a server error, not a dropped connection
            return json_reply(500, {"title": "Internal Server Error", "status": 500, "detail": repr(exc)})

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        path = unquote(parts.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(f"{method} {path}")
        if path.startswith("/_sandbox/"):
            return self._admin(method, path.removeprefix("/_sandbox/"), body)
        is_x = path.startswith("/2/")
        graph = re.match(r"^/v\d+\.\d+/(.*)$", path)
        if not is_x and graph is None:
            return json_reply(404, {"error": "not a sandbox route"})
        fault = self._take_fault(path)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        elif fault is not None and fault.kind == "malformed":
            return 200, {"content-type": "application/json; charset=utf-8"}, b'{"data": [{"id": "1'
        if is_x:
            return self._x(method, path, params, headers, body, fault)
        assert graph is not None
        if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        node_path = graph.group(1).strip("/")
        # The Instagram account is reached through the same Graph API as the Page it is linked to.
        if self.is_instagram(method, node_path, params):
            return self._instagram(method, node_path, params, fault)
        return self._graph(method, node_path, params, fault)

    def add_many(self, items: list[Any]) -> list[str]:
        """Add several items in one call: ``[{"route": "add_mention", "args": {...}}, ...]``; return their ids.

        Each item is added when its turn comes, with the time of that moment (``created_at`` is when the item
        appears here, as for single adds); a bad item stops the call, and the items before it stay added.
        """
        if not isinstance(items, list):
            raise TypeError("items must be a list")
        ids: list[str] = []
        for item in items:
            if not isinstance(item, dict) or item.get("route") not in ADMIN_ADDS:
                raise ValueError(f"item {len(ids)}: route must be one of {', '.join(sorted(ADMIN_ADDS))}")
            kwargs = item.get("args") or {}
            if not isinstance(kwargs, dict):
                raise TypeError(f"item {len(ids)}: args must be a JSON object of keyword arguments")
            ids.append(getattr(self, item["route"])(**kwargs))
            self._announce(item["route"], ids[-1])
        return ids

    def _admin(self, method: str, name: str, body: bytes) -> Reply:
        if method == "GET" and name == "sent":
            return json_reply(200, {"sent": [{**asdict(r), "at": r.at.isoformat()} for r in self.sent]})
        if name == "webhooks" and method == "GET":
            return json_reply(200, self.webhook_counts())
        if name == "webhooks" and method == "POST":
            try:
                kwargs = json.loads(body or b"{}")
                if not isinstance(kwargs, dict):
                    raise TypeError("the body must be a JSON object of keyword arguments")
                self.push_webhooks(**kwargs)
            except (TypeError, ValueError) as exc:
                return json_reply(400, {"error": str(exc)})
            return json_reply(200, self.webhook_counts())
        if method == "POST" and (name in ADMIN_ADDS or name == "add_many"):
            try:
                kwargs = json.loads(body or b"{}")
                if not isinstance(kwargs, dict):
                    raise TypeError("the body must be a JSON object of keyword arguments")
                if name == "add_many":
                    return json_reply(201, {"ids": self.add_many(**kwargs)})
                added = getattr(self, name)(**kwargs)
                self._announce(name, added)
                return json_reply(201, {"id": added})
            except (TypeError, KeyError, ValueError, AttributeError) as exc:
                return json_reply(400, {"error": str(exc)})
        return json_reply(404, {"error": "unknown admin route"})


class _Handler(BaseHTTPRequestHandler):
    sandbox: Sandbox
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waited for the client's delayed ACK of
    # the headers, ~40 ms per keep-alive request (the pipeline bench's feeder managed 22 requests/s).
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.sandbox.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        # The client may have given up (its timeout fired during a scripted slow response).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the demo log what matters themselves."""


def serve_main(argv: list[str] | None = None) -> None:
    """Run the sandbox as its own process: print ``{"url": …}`` on one line, serve until stdin closes.

    ``--mentions N`` seeds N mentions from ``--authors`` people (for the ingest bench and crash tests).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m sandbox.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mentions", type=int, default=0)
    parser.add_argument("--authors", type=int, default=500)
    parser.add_argument("--limit-scale", type=int, default=1, help="multiply X's per-window request caps")
    parser.add_argument("--fb-app-secret", default=None, help="the Facebook app's secret (appsecret_proof, webhooks)")
    args = parser.parse_args(argv)
    sandbox = Sandbox(port=args.port, fb_app_secret=args.fb_app_secret)
    sandbox.x_limit_scale = args.limit_scale
    texts = [
        "mi pedido no llega y nadie responde",
        "my order never arrived, I want a refund",
        "¿abren el domingo? 🙏",
        "the app crashes at checkout again",
        "gracias por la ayuda, todo resuelto",
    ]
    for i in range(args.mentions):
        sandbox.add_mention(f"{texts[i % len(texts)]} #{i}", author=f"bench_user_{i % max(1, args.authors)}")
    sandbox.start()
    print(json.dumps({"url": sandbox.url, "mentions": args.mentions}), flush=True)
    # The parent owns our lifetime: when it closes our stdin (or dies), we stop.
    sys.stdin.read()
    sandbox.stop()


if __name__ == "__main__":
    serve_main()
