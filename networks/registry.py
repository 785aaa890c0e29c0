"""The networks Escucha speaks to: adding one is a folder under ``networks/`` plus one line in ``NETWORKS``."""

from __future__ import annotations

from typing import Any

import requests

from ground.settings import Settings
from networks.base import Listener, Sender
from networks.facebook.spec import SPEC as FACEBOOK
from networks.http import RewritingSession
from networks.instagram.spec import SPEC as INSTAGRAM
from networks.settings import NetworkSettings
from networks.spec import NetworkSpec, plain_spec
from networks.x.spec import SPEC as X

NETWORKS: dict[str, NetworkSpec[Any]] = {spec.name: spec for spec in (X, FACEBOOK, INSTAGRAM)}


def spec_of(network: str) -> NetworkSpec[Any]:
    """The network's spec; a name nobody registered gets the default rules and no sources."""
    return NETWORKS.get(network) or plain_spec(network)


def network_settings(settings: Settings, network: str) -> NetworkSettings:
    """One network's own settings (``ESCUCHA_<NAME>_…`` and keywords such as ``x_page_size=…`` on ``settings``)."""
    return spec_of(network).settings_of(settings)


def _session(settings: Settings, session: requests.Session | None) -> requests.Session:
    if session is not None:
        return session
    return RewritingSession(settings.sandbox_url, timeout=settings.http_timeout_seconds)


def configured_networks(settings: Settings) -> list[tuple[NetworkSpec[Any], NetworkSettings]]:
    """Each network that is switched on and has its credentials, with its settings."""
    pairs = [(spec, spec.settings_of(settings)) for spec in NETWORKS.values()]
    return [(spec, own) for spec, own in pairs if own.configured()]


def poll_intervals(settings: Settings, listeners: list[Listener]) -> dict[str, float]:
    """Each listener's polling interval, keyed ``network:source`` as the worker's poll jobs are."""
    return {
        f"{x.network}:{x.source}": network_settings(settings, x.network).source_poll_seconds(x.source)
        for x in listeners
    }


def build_listeners(settings: Settings, session: requests.Session | None = None) -> list[Listener]:
    """Every listener whose network is enabled and has credentials."""
    http = _session(settings, session)
    return [listener for spec, own in configured_networks(settings) for listener in spec.listeners(own, settings, http)]


def build_senders(settings: Settings, session: requests.Session | None = None) -> dict[str, Sender]:
    """One sender per network that is enabled and has credentials, keyed by network name."""
    http = _session(settings, session)
    return {spec.name: spec.sender(own, http) for spec, own in configured_networks(settings)}
