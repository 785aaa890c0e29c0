"""Which listeners and senders run, decided from settings: adding a network is one module plus an entry here."""

from __future__ import annotations

from collections.abc import Callable

import requests

from escucha.settings import Settings
from listeners.base import Listener, Sender
from listeners.facebook import FacebookFeedListener, FacebookMessagesListener, FacebookSender, make_graph
from listeners.http import RewritingSession
from listeners.x import XDMListener, XMentionsListener, XSearchListener, XSender, make_x_client


def _session(settings: Settings, session: requests.Session | None) -> requests.Session:
    return session if session is not None else RewritingSession(settings.sandbox_url)


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
    user_id, username = settings.x_brand_user_id, settings.x_brand_username
    listeners: list[Listener] = [
        XMentionsListener(client, brand_user_id=user_id, brand_username=username),
        XDMListener(client, brand_user_id=user_id, brand_username=username),
    ]
    if settings.x_search_query:
        listeners.append(
            XSearchListener(client, query=settings.x_search_query, brand_user_id=user_id, brand_username=username)
        )
    return listeners


def _facebook_listeners(settings: Settings, session: requests.Session) -> list[Listener]:
    graph = make_graph(settings, session)
    page_id = str(settings.facebook_page_id)
    return [FacebookFeedListener(graph, page_id=page_id), FacebookMessagesListener(graph, page_id=page_id)]


# network -> (is it configured?, its listeners, its sender)
NETWORKS: dict[
    str,
    tuple[
        Callable[[Settings], bool],
        Callable[[Settings, requests.Session], list[Listener]],
        Callable[[Settings, requests.Session], Sender],
    ],
] = {
    "x": (x_configured, _x_listeners, lambda s, session: XSender(make_x_client(s, session))),
    "facebook": (
        facebook_configured,
        _facebook_listeners,
        lambda s, session: FacebookSender(make_graph(s, session)),
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
