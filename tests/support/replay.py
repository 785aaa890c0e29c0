"""Test helpers: replay."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import yaml

from ground.settings import Settings
from networks.facebook.adapter import (
    make_graph,
)
from networks.http import RewritingSession
from networks.x.adapter import make_x_client
from tests.support.paths import FIXTURES

CASSETTES = FIXTURES / "x" / "tweepy-cassettes"


TWARC = FIXTURES / "x" / "twarc-v2"


GRAPH = FIXTURES / "facebook" / "graph-api"


JSON_TYPE = "application/json; charset=utf-8"

Route = tuple[int, dict[str, str], bytes]


class Replay:
    """A loopback server answering each path with a recorded response (matching on method and path)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[str] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                path = urlsplit(self.path).path
                replay.seen.append(f"{self.command} {path}")
                status, headers, body = replay.routes.get(
                    (self.command, path), (200, {"content-type": JSON_TYPE}, b'{"data": []}')
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def json(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> None:
        self.routes[(method, path)] = (200, {"content-type": JSON_TYPE, **(headers or {})}, json.dumps(body).encode())

    def cassette(self, name: str, index: int = 0, path: str | None = None) -> Any:
        """Serve interaction ``index`` of a tweepy cassette (gzip+base64 body decoded) at its path."""
        interaction = yaml.safe_load((CASSETTES / name).read_text())["interactions"][index]
        raw = interaction["response"]["body"]["string"]
        body = json.loads(gzip.decompress(raw) if isinstance(raw, bytes) else raw)
        headers = {k: v[0] for k, v in interaction["response"]["headers"].items() if k.startswith("x-rate-limit")}
        method = interaction["request"]["method"]
        route = path or urlsplit(interaction["request"]["uri"]).path
        self.routes[(method, route)] = (
            interaction["response"]["status"]["code"],
            {"content-type": JSON_TYPE, **headers},
            json.dumps(body).encode(),
        )
        return body


def x_client(replay: Replay) -> Any:
    settings = Settings(
        x_bearer_token="recorded",
        x_consumer_key="k",
        x_consumer_secret="s",
        x_access_token="a",
        x_access_token_secret="b",
        sandbox_url=replay.url,
    )
    return make_x_client(settings, RewritingSession(replay.url))


def graph(replay: Replay) -> Any:
    settings = Settings(facebook_page_token="recorded", sandbox_url=replay.url)
    return make_graph(settings, RewritingSession(replay.url))


def twarc_page(name: str) -> dict[str, Any]:
    line = json.loads((TWARC / name).read_text().splitlines()[0])
    data = line["data"] if isinstance(line["data"], list) else [line["data"]]
    meta = {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
    return {"data": data, "includes": line.get("includes", {}), "meta": meta}
