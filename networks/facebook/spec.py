"""Facebook as the rest of Escucha sees it: settings, sources, sender and reply rules."""

from __future__ import annotations

from typing import Any

import requests

from ground.settings import Settings
from networks.base import Listener, Sender
from networks.facebook.adapter import FacebookFeedListener, FacebookMessagesListener, FacebookSender, make_graph
from networks.facebook.settings import FacebookSettings
from networks.spec import NetworkSpec

# Graph accepts 8,000 characters in a comment; Messenger text far fewer would be kinder, but the API takes it.
GRAPH_REPLY_LIMIT = 8000
# The Send API refuses a Messenger text over 2,000 characters.
MESSENGER_TEXT_LIMIT = 2000


def facebook_listeners(fb: FacebookSettings, settings: Settings, session: requests.Session) -> list[Listener]:
    """The Page's feed (posts and comments) and Messenger, each as its settings switch them."""
    del settings  # Graph's retries live in the poller; nothing app-wide shapes these sources
    graph = make_graph(fb, session)
    options: dict[str, Any] = {"page_id": str(fb.page_id), "page_size": fb.page_size, "max_pages": fb.max_pages}
    listeners: list[Listener] = []
    if fb.source_enabled("feed"):
        listeners.append(FacebookFeedListener(graph, **options, watch_days=fb.watch_days))
    if fb.source_enabled("messages"):
        listeners.append(FacebookMessagesListener(graph, **options))
    return listeners


def facebook_sender(fb: FacebookSettings, session: requests.Session) -> Sender:
    """Comment replies and Messenger messages from the Page."""
    return FacebookSender(make_graph(fb, session), page_id=fb.page_id)


SPEC = NetworkSpec(
    name="facebook",
    label="Facebook",
    settings=FacebookSettings,
    listeners=facebook_listeners,
    sender=facebook_sender,
    reply_limit=GRAPH_REPLY_LIMIT,
    dm_reply_limit=MESSENGER_TEXT_LIMIT,
)
