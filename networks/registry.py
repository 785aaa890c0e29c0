"""Which listeners and senders run, decided from settings: adding a network is one module plus an entry here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ground.settings import Settings
from networks.base import Listener, Sender
from networks.facebook.adapter import FacebookFeedListener, FacebookMessagesListener, FacebookSender, make_graph
from networks.http import RewritingSession
from networks.x.adapter import XDMListener, XMentionsListener, XSearchListener, XSender, make_x_client


def _session(settings: Settings, session: requests.Session | None) -> requests.Session:
    if session is not None:
        return session
    return RewritingSession(settings.sandbox_url, timeout=settings.http_timeout_seconds)


def x_configured(settings: Settings) -> bool:
    """Whether X is enabled and has the user-context keys that mentions, DMs and replies need."""
    keys = (
        settings.x_consumer_key,
        settings.x_consumer_secret,
        settings.x_access_token,
        settings.x_access_token_secret,
    )
    return settings.x_enabled and all(k is not None for k in keys)


def facebook_configured(settings: Settings) -> bool:
    """Whether Facebook is enabled and has a page id and a page token."""
    return settings.facebook_enabled and bool(settings.facebook_page_id) and settings.facebook_page_token is not None


def _x_listeners(settings: Settings, session: requests.Session) -> list[Listener]:
    client = make_x_client(settings, session)
    common: dict[str, Any] = {
        "brand_user_id": settings.x_brand_user_id,
        "brand_username": settings.x_brand_username,
        "page_size": settings.x_page_size,
        "max_pages": settings.x_max_pages,
        "retries": settings.fetch_retries,
    }
    listeners: list[Listener] = []
    if settings.source_enabled("x", "mentions"):
        listeners.append(XMentionsListener(client, **common))
    if settings.source_enabled("x", "dms"):
        listeners.append(XDMListener(client, **common))
    if settings.x_search_query and settings.source_enabled("x", "search"):
        listeners.append(XSearchListener(client, query=settings.x_search_query, **common))
    return listeners


def _facebook_listeners(settings: Settings, session: requests.Session) -> list[Listener]:
    graph = make_graph(settings, session)
    options: dict[str, Any] = {
        "page_id": str(settings.facebook_page_id),
        "page_size": settings.facebook_page_size,
        "max_pages": settings.facebook_max_pages,
    }
    listeners: list[Listener] = []
    if settings.source_enabled("facebook", "feed"):
        listeners.append(FacebookFeedListener(graph, **options))
    if settings.source_enabled("facebook", "messages"):
        listeners.append(FacebookMessagesListener(graph, **options))
    return listeners


# network -> (is it configured?, its listeners, its sender)
NETWORKS: dict[
    str,
    tuple[
        Callable[[Settings], bool],
        Callable[[Settings, requests.Session], list[Listener]],
        Callable[[Settings, requests.Session], Sender],
    ],
] = {
    "x": (
        x_configured,
        _x_listeners,
        lambda s, session: XSender(make_x_client(s, session), brand_user_id=s.x_brand_user_id),
    ),
    "facebook": (
        facebook_configured,
        _facebook_listeners,
        lambda s, session: FacebookSender(make_graph(s, session), page_id=s.facebook_page_id),
    ),
}


def build_listeners(settings: Settings, session: requests.Session | None = None) -> list[Listener]:
    """Every listener whose network is enabled and has credentials."""
    http = _session(settings, session)
    return [
        listener
        for configured, listeners, _ in NETWORKS.values()
        if configured(settings)
        for listener in listeners(settings, http)
    ]


def build_senders(settings: Settings, session: requests.Session | None = None) -> dict[str, Sender]:
    """One sender per network that is enabled and has credentials, keyed by network name."""
    http = _session(settings, session)
    return {name: sender(settings, http) for name, (configured, _, sender) in NETWORKS.items() if configured(settings)}
