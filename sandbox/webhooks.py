"""The sandbox's webhook sender: signs deliveries as X and Facebook do and pushes them to a receiver.

Like the networks it retries what was not answered 2xx (a 5xx, a 429, a refused connection) with backoff,
and it can send a delivery twice or a batch out of order. 4xx answers other than 429 are final, as for a
network that logs the failure; they are recorded for the tests.
"""

from __future__ import annotations

import itertools
import json
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from networks import graph
from networks.x import webhook as xw


@dataclass
class Attempt:
    """One HTTP try of one delivery: the network, the status (0: no answer) and the delivery's number."""

    network: str
    status: int
    delivery: int


@dataclass
class WebhookPusher:
    """Pushes signed deliveries to ``base_url``'s ``/webhooks/x`` and ``/webhooks/facebook``."""

    base_url: str
    x_consumer_secret: str
    fb_app_secret: str
    attempts_per_delivery: int = 8
    backoff_s: float = 0.05
    duplicate_rate: float = 0.0
    seed: int = 0
    timeout_s: float = 10.0
    attempts: list[Attempt] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # scripted faults, not security
        self._http = requests.Session()

    def body_and_headers(self, network: str, payload: Any) -> tuple[bytes, dict[str, str]]:
        """The bytes and headers the network would send for ``payload``."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        if network == "x":
            return body, {
                "Content-Type": "application/json",
                xw.SIGNATURE_HEADER: xw.sign(self.x_consumer_secret, body),
            }
        sig = graph.sign(self.fb_app_secret, body)
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig}

    def post(self, network: str, body: bytes, headers: dict[str, str]) -> int:
        """One try; the status, or 0 when the receiver did not answer."""
        try:
            return self._http.post(f"{self.base_url}/webhooks/{network}", data=body, headers=headers,
                                   timeout=self.timeout_s).status_code  # fmt: skip
        except requests.RequestException:
            return 0

    def push(self, network: str, payload: Any) -> int:
        """Deliver until a final answer (2xx or a 4xx other than 429) or the tries run out; the last status."""
        self._count += 1
        body, headers = self.body_and_headers(network, payload)
        status = 0
        for attempt in range(self.attempts_per_delivery):
            status = self.post(network, body, headers)
            self.attempts.append(Attempt(network, status, self._count))
            if 200 <= status < 300 or (400 <= status < 500 and status != 429):
                break
            time.sleep(self.backoff_s * 2**attempt)
        if 200 <= status < 300 and self._rng.random() < self.duplicate_rate:
            # The network did not see our answer in time and sends the same delivery again.
            self.attempts.append(Attempt(network, self.post(network, body, headers), self._count))
        return status

    def push_all(self, deliveries: list[tuple[str, Any]], *, shuffle: bool = False) -> list[int]:
        """Push several deliveries, in order or shuffled (networks do not promise order)."""
        order = list(deliveries)
        if shuffle:
            self._rng.shuffle(order)
        return [self.push(network, payload) for network, payload in order]


# A delivery held back to be overtaken (``reorder_rate``) waits this long at most, as a network's slower queue does.
REORDER_DELAY_S = 1.0


@dataclass
class FeedCounts:
    """What a ``WebhookFeed`` did: deliveries made, HTTP tries, retries, duplicates sent, given up, by status."""

    deliveries: int = 0
    attempts: int = 0
    retries: int = 0
    duplicates_sent: int = 0
    held_back: int = 0
    given_up: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    # Seconds from queueing (right after the item was added) to the 2xx, one per delivery answered (percentiles).
    delivery_s: list[float] = field(default_factory=list)


class WebhookFeed:
    """Pushes each new item of the sandbox to a receiver as the networks do, from a few sender threads.

    Each delivery is signed and retried with backoff until a final answer; ``duplicate_rate`` of them are sent a
    second time after their 200 (the network missed our answer), and ``reorder_rate`` of them are held back up to
    ``REORDER_DELAY_S`` so later ones overtake them. Several senders at once reorder deliveries too.
    """

    def __init__(
        self,
        base_url: str,
        *,
        x_consumer_secret: str,
        fb_app_secret: str,
        senders: int = 4,
        duplicate_rate: float = 0.0,
        reorder_rate: float = 0.0,
        attempts_per_delivery: int = 12,
        backoff_s: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.base_url, self.duplicate_rate, self.reorder_rate = base_url, duplicate_rate, reorder_rate
        self._rng = random.Random(seed)  # scripted faults, not security
        self._queue: queue.PriorityQueue[tuple[float, int, str, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._busy = 0
        self.counts = FeedCounts()
        self._pushers = [
            WebhookPusher(base_url, x_consumer_secret=x_consumer_secret, fb_app_secret=fb_app_secret,
                          attempts_per_delivery=attempts_per_delivery, backoff_s=backoff_s,
                          duplicate_rate=duplicate_rate, seed=seed + i)
            for i in range(senders)
        ]  # fmt: skip
        self._threads = [
            threading.Thread(target=self._send_loop, args=(p,), name=f"webhook-feed-{i}", daemon=True)
            for i, p in enumerate(self._pushers)
        ]
        for thread in self._threads:
            thread.start()

    def enqueue(self, network: str, payload: Any) -> None:
        """Queue one delivery (sent at once, or held back a little when drawn for reordering)."""
        queued = due = time.monotonic()
        with self._lock:
            if self._rng.random() < self.reorder_rate:
                due += self._rng.uniform(0.1, REORDER_DELAY_S)
                self.counts.held_back += 1
        self._queue.put((due, next(self._order), network, (queued, payload)))

    def pending(self) -> int:
        """Deliveries queued or being sent."""
        with self._lock:
            return self._queue.qsize() + self._busy

    def _send_loop(self, pusher: WebhookPusher) -> None:
        while not self._stop.is_set():
            try:
                due, order, network, (queued, payload) = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            wait = due - time.monotonic()
            if wait > 0:  # held back: put it back and let what is due go first
                self._queue.put((due, order, network, (queued, payload)))
                time.sleep(min(wait, 0.05))
                continue
            with self._lock:
                self._busy += 1
            before = len(pusher.attempts)
            try:
                status = pusher.push(network, payload)
                took = time.monotonic() - queued
            finally:
                with self._lock:
                    self._busy -= 1
            with self._lock:
                tries = pusher.attempts[before:]
                self.counts.deliveries += 1
                self.counts.attempts += len(tries)
                first_ok = next((i for i, a in enumerate(tries) if 200 <= a.status < 300), len(tries) - 1)
                self.counts.retries += first_ok
                self.counts.duplicates_sent += len(tries) - first_ok - 1
                if not 200 <= status < 300:
                    self.counts.given_up += 1
                else:
                    self.counts.delivery_s.append(took)
                for a in tries:
                    key = str(a.status)
                    self.counts.by_status[key] = self.counts.by_status.get(key, 0) + 1
            del pusher.attempts[:]

    def stop(self) -> None:
        """Stop the senders (what is still queued is dropped, as when a subscription is removed)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
