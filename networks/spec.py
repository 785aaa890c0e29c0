"""What a network tells the rest of Escucha about itself: its settings, how to build its sources and sender,
and its reply rules, so that nothing outside its folder says ``if network == "x"``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import requests

from ground.settings import Settings
from networks.base import Listener, Sender, WebhookBatch
from networks.settings import NetworkSettings

S = TypeVar("S", bound=NetworkSettings)
# What a reply may hold where a network says nothing stricter.
DEFAULT_REPLY_LIMIT = 8000


def _same(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """A network's webhooks as the receiver mounts them at ``/webhooks/<name>``: handshake, signature, payloads."""

    signature_header: str
    # (secret, body, header) -> whether the header signs the body.
    signature_ok: Callable[[str, bytes, str | None], bool]
    # The secret that signs deliveries and the token of the subscription handshake, from the network's settings.
    secret: Callable[[NetworkSettings], str | None]
    verify_token: Callable[[NetworkSettings], str | None]
    # (query parameters, verify token) -> the challenge to echo, or None to refuse.
    challenge: Callable[[dict[str, str], str], str | None]
    # (payload, the network's settings, a session for lookups) -> the delivery's posts; ``WebhookRefused`` when
    # it is no delivery for our account, a ``ListenerError`` when a lookup failed (the network redelivers).
    parse: Callable[[Any, NetworkSettings, requests.Session], WebhookBatch]


@dataclass(frozen=True, slots=True)
class NetworkSpec(Generic[S]):
    """One network: settings, builders and reply rules. Registered with one line in ``networks/registry.py``."""

    name: str
    label: str
    settings: type[S]
    # Its sources, given its own settings and the app's (retries, timeouts), talking through one session.
    listeners: Callable[[S, Settings, requests.Session], list[Listener]]
    sender: Callable[[S, requests.Session], Sender]
    reply_limit: int = DEFAULT_REPLY_LIMIT
    # How the network counts a reply's length (X weighs URLs and emoji), and how a draft is cut to fit.
    reply_length: Callable[[str], int] = len
    fit_reply: Callable[[str], str] = _same
    # Whether a greeting names the customer's handle (@name) or their first name.
    greets_by_handle: bool = False
    # A DM's (or private reply's) own limit where it is stricter than ``reply_limit`` (Messenger text: 2,000;
    # Instagram: 1,000 against a comment's 2,200).
    dm_reply_limit: int | None = None
    # How long after the customer's last message a DM may still be answered (None: no such window).
    dm_window: timedelta | None = None
    # Public comments may also be answered once in the commenter's inbox, within this long of the comment
    # (None: the network has no private replies).
    private_reply_window: timedelta | None = None
    # Its webhooks, mounted by the receiver at ``/webhooks/<name>`` (None: polling only, or routes of its own).
    webhook: WebhookSpec | None = None

    def limit_for(self, *, private: bool) -> int:
        """The most a reply may hold, in ``reply_length`` units: a DM's limit when it goes privately."""
        return min(self.reply_limit, self.dm_reply_limit) if private and self.dm_reply_limit else self.reply_limit

    def settings_of(self, settings: Settings) -> S:
        """The network's own settings: its environment variables, overridden by keywords given to ``settings``."""
        return self.settings.of(settings)

    def configured(self, settings: Settings) -> bool:
        """Whether the network is switched on and has its credentials."""
        return self.settings_of(settings).configured()


def plain_spec(name: str) -> NetworkSpec[Any]:
    """The rules for a network nobody registered (old rows of a removed network): default limits, no sources."""

    def no_listeners(_s: Any, _settings: Settings, _session: requests.Session) -> list[Listener]:
        return []

    def no_sender(_s: Any, _session: requests.Session) -> Sender:
        raise LookupError(f"no sender for the unregistered network {name!r}")

    return NetworkSpec(
        name=name, label=name.title(), settings=NetworkSettings, listeners=no_listeners, sender=no_sender
    )
