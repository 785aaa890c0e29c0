"""The ASGI receiver: handshakes, signature checks, limits, then each delivery stored with its log, exactly once.

A delivery is answered only after its posts and its log row are committed (200), so a 200 never covers a post
that is not stored; a database outage answers 503 and the network redelivers. Deliveries that arrive together
share a transaction (``webhooks/writer.py``). Refusals are 4xx with one log
line that names the reason, the network and the address, never a secret, a signature or the body.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ground.redact import reveal
from ground.settings import Settings
from models.store import Delivery
from networks import graph
from networks.base import ListenerError, WebhookBatch, WebhookRefused
from networks.facebook import webhook as fb
from networks.facebook.settings import FacebookSettings
from networks.http import RewritingSession
from networks.registry import NETWORKS
from networks.spec import NetworkSpec
from networks.x import webhook as xw
from networks.x.settings import XSettings
from webhooks.limits import AddressLimiter
from webhooks.writer import DeliveryWriter

log = logging.getLogger("escucha.webhooks")
# Seconds a network is asked to wait before redelivering after a database outage.
RETRY_AFTER_S = 5


@dataclass
class Counts:
    """What the receiver saw since it started (the pipeline bench reports them)."""

    received: int = 0
    verified: int = 0
    rejected: int = 0
    duplicated: int = 0
    stored_posts: int = 0
    unavailable: int = 0


class _Refused(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


def _reject_constant(name: str) -> Any:
    # Python's parser accepts NaN and Infinity; no network sends them, and PostgreSQL's json refuses them.
    raise ValueError(f"{name} is not JSON")


class Receiver:
    """The webhook endpoints of one deployment: ``/webhooks/x`` and ``/webhooks/facebook``."""

    def __init__(
        self, settings: Settings, engine: Engine, *, wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings, self.engine, self._now = settings, engine, wall_clock
        self.x = XSettings.of(settings)
        self.fb = FacebookSettings.of(settings)
        self._x_secret = reveal(self.x.consumer_secret)
        self._fb_secret = reveal(self.fb.app_secret)
        self._fb_verify = reveal(self.fb.verify_token)
        self.limiter = AddressLimiter(settings.webhooks_rate_per_minute)
        self.counts = Counts()
        # Verified deliveries are stored in shared transactions by one thread (webhooks/writer.py).
        self.writer = DeliveryWriter(engine)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/webhooks/x", self.x_crc, methods=["GET"]),
                Route("/webhooks/x", self.x_delivery, methods=["POST"]),
                Route("/webhooks/facebook", self.fb_handshake, methods=["GET"]),
                Route("/webhooks/facebook", self.fb_delivery, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
                # Each other network that declares its webhooks (NetworkSpec.webhook) gets its two routes here.
                *[
                    route
                    for spec in NETWORKS.values()
                    if spec.webhook is not None
                    for route in (
                        Route(f"/webhooks/{spec.name}", self._spec_handshake(spec), methods=["GET"]),
                        Route(f"/webhooks/{spec.name}", self._spec_delivery(spec), methods=["POST"]),
                    )
                ],
            ]
        )
        # Lookups a delivery needs (an Instagram mention arrives as ids) go through the clients' own session.
        self._http = RewritingSession(settings.sandbox_url, timeout=settings.http_timeout_seconds)

    # ----------------------------------------------------------------- helpers
    def _count(self, **add: int) -> None:
        with self._lock:
            for name, n in add.items():
                setattr(self.counts, name, getattr(self.counts, name) + n)

    def _address(self, request: Request) -> str:
        if self.settings.webhooks_trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for", "")
            # The proxy appends the address it saw: the last hop is the one it vouches for.
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                return hops[-1][:64]
        return request.client.host if request.client else "unknown"

    def _refuse(self, request: Request, network: str, exc: _Refused) -> Response:
        self._count(rejected=1)
        # Reason, network and address only: never the body, a header, a token or a signature.
        log.warning("webhook %s refused (%d) from %s: %s", network, exc.status, self._address(request), exc.reason)
        return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)

    def _throttle(self, request: Request) -> None:
        wait = self.limiter.take(self._address(request))
        if wait > 0:
            raise _Refused(429, "too many requests from this address", {"Retry-After": str(math.ceil(wait))})

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.webhooks_max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _Refused(413, f"body over {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Refused(413, f"body over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            # UTF-8 only, as RFC 8259 and both networks say: json.loads would guess UTF-16/32 from the first bytes
            # of raw bytes, and read b"\x000" as the number 0.
            return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            # UnicodeDecodeError and JSONDecodeError are ValueErrors; a nesting bomb is a RecursionError.
            raise _Refused(400, f"malformed JSON ({type(exc).__name__})") from None

    def _check_window(self, batch: WebhookBatch) -> None:
        if batch.sent_at is None:
            return
        now = self._now()
        if batch.sent_at < now - timedelta(seconds=self.settings.webhooks_replay_window_seconds):
            raise _Refused(403, "replayed: the delivery's events are older than the replay window")
        if batch.sent_at > now + timedelta(seconds=self.settings.webhooks_clock_skew_seconds):
            raise _Refused(403, "the delivery's events are dated in the future")

    async def _deliver(
        self,
        request: Request,
        network: str,
        secret: str | None,
        header: str,
        check: Callable[[str, bytes, str | None], bool],
        parse: Callable[[Any], WebhookBatch],
    ) -> Response:
        self._count(received=1)
        try:
            self._throttle(request)
            if not secret:
                raise _Refused(404, f"{network} webhooks are not configured here")
            body = await self._body(request)
            signature = request.headers.get(header)
            if not signature:
                raise _Refused(401, f"unsigned: no {header} header")
            if not check(secret, body, signature):
                raise _Refused(403, f"wrong {header}")
            self._count(verified=1)
            payload = self._json(body)
            try:
                # In a worker thread: a parse may look items up on the network (an Instagram mention's text).
                batch = await run_in_threadpool(parse, payload)
            except WebhookRefused as exc:
                raise _Refused(422, str(exc)) from None
            except ListenerError as exc:
                self._count(unavailable=1)
                log.error("webhook %s: a lookup failed, asking for redelivery: %s", network, type(exc).__name__)
                return JSONResponse(
                    {"error": "the network could not be read, redeliver later"},
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._check_window(batch)
            delivery_id = hashlib.sha256(body).hexdigest()
            try:
                started = time.monotonic()
                stored = await self.writer.store(Delivery(network, delivery_id, batch.sent_at, batch.posts))
            except (OperationalError, DBAPIError, TimeoutError) as exc:
                self._count(unavailable=1)
                log.error("webhook %s: database unavailable, asking for redelivery: %s", network, type(exc).__name__)
                return JSONResponse(
                    {"error": "database unavailable, redeliver later"},
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            if stored is None:
                self._count(duplicated=1)
                raise _Refused(409, f"replayed: delivery {delivery_id[:12]} was stored before")
        except _Refused as exc:
            return self._refuse(request, network, exc)
        inserted = stored.inserted
        self._count(stored_posts=inserted)
        took = time.monotonic() - started
        # Answered now; the notes of skipped items are logged after the response went out.
        return JSONResponse(
            {"ok": True, "posts": len(batch.posts), "inserted": inserted},
            background=BackgroundTask(self._after, network, delivery_id, batch, inserted, took),
        )

    @staticmethod
    def _after(network: str, delivery_id: str, batch: WebhookBatch, inserted: int, took: float) -> None:
        for note in batch.skipped:
            log.info("webhook %s delivery %s: skipped %s", network, delivery_id[:12], note)
        log.info(
            "webhook %s delivery %s: %d posts, %d new, stored in %.3f s",
            network, delivery_id[:12], len(batch.posts), inserted, took,
        )  # fmt: skip

    # ----------------------------------------------------------------- endpoints
    async def x_crc(self, request: Request) -> Response:
        """X's CRC check: ``GET ?crc_token=…`` answered with the HMAC of the token under the consumer secret."""
        try:
            self._throttle(request)
            if not self._x_secret:
                raise _Refused(404, "x webhooks are not configured here")
            token = request.query_params.get("crc_token")
            if not token or len(token) > 1024:
                raise _Refused(400, "crc_token missing or too long")
        except _Refused as exc:
            return self._refuse(request, "x", exc)
        return JSONResponse(xw.crc_response(self._x_secret, token))

    async def x_delivery(self, request: Request) -> Response:
        """An Account Activity delivery (mentions, DMs)."""

        def parse(payload: Any) -> WebhookBatch:
            return xw.parse_activity(payload, brand_user_id=self.x.brand_user_id, brand_username=self.x.brand_username)

        return await self._deliver(request, "x", self._x_secret, xw.SIGNATURE_HEADER, xw.signature_ok, parse)

    async def fb_handshake(self, request: Request) -> Response:
        """Facebook's subscription handshake: echo ``hub.challenge`` when ``hub.verify_token`` is ours."""
        try:
            self._throttle(request)
            if not self._fb_verify:
                raise _Refused(404, "facebook webhooks are not configured here (no verify token)")
            answer = graph.challenge(dict(request.query_params), self._fb_verify)
            if answer is None:
                raise _Refused(403, "handshake refused: not a subscribe request with our verify token")
        except _Refused as exc:
            return self._refuse(request, "facebook", exc)
        return PlainTextResponse(answer)

    async def fb_delivery(self, request: Request) -> Response:
        """A Page delivery (feed posts and comments, Messenger messages)."""
        page_id = self.fb.page_id or ""

        def parse(payload: Any) -> WebhookBatch:
            if not page_id:
                raise WebhookRefused("no Facebook page is configured")
            return fb.parse_page_delivery(payload, page_id=page_id)

        return await self._deliver(
            request, "facebook", self._fb_secret, graph.SIGNATURE_HEADER, graph.signature_ok, parse
        )

    def _spec_handshake(self, spec: NetworkSpec[Any]) -> Callable[[Request], Any]:
        """The subscription handshake of a network that declares its webhooks (``hub.challenge`` style)."""
        hooks = spec.webhook
        assert hooks is not None
        own = spec.settings_of(self.settings)

        async def handshake(request: Request) -> Response:
            try:
                self._throttle(request)
                token = hooks.verify_token(own)
                if not token:
                    raise _Refused(404, f"{spec.name} webhooks are not configured here (no verify token)")
                answer = hooks.challenge(dict(request.query_params), token)
                if answer is None:
                    raise _Refused(403, "handshake refused: not a subscribe request with our verify token")
            except _Refused as exc:
                return self._refuse(request, spec.name, exc)
            return PlainTextResponse(answer)

        return handshake

    def _spec_delivery(self, spec: NetworkSpec[Any]) -> Callable[[Request], Any]:
        """The delivery endpoint of a network that declares its webhooks: same checks, limits and store path."""
        hooks = spec.webhook
        assert hooks is not None
        own = spec.settings_of(self.settings)

        async def delivery(request: Request) -> Response:
            def parse(payload: Any) -> WebhookBatch:
                return hooks.parse(payload, own, self._http)

            secret = hooks.secret(own)
            return await self._deliver(request, spec.name, secret, hooks.signature_header, hooks.signature_ok, parse)

        return delivery

    async def health(self, request: Request) -> Response:
        """The receiver's counters, and how many transactions stored its deliveries."""
        with self._lock:
            return JSONResponse({**asdict(self.counts), "transactions": self.writer.groups})
