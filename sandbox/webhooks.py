"""The sandbox's webhook sender: signs deliveries as X and Facebook do and pushes them to a receiver.

Like the networks it retries what was not answered 2xx (a 5xx, a 429, a refused connection) with backoff,
and it can send a delivery twice or a batch out of order. 4xx answers other than 429 are final, as for a
network that logs the failure; they are recorded for the tests.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from networks.facebook import webhook as fb
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
        sig = fb.sign(self.fb_app_secret, body)
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
