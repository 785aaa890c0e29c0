"""X as the rest of Escucha sees it: settings, sources, sender and reply rules (280 weighted characters)."""

from __future__ import annotations

from typing import Any

import requests

from ground.settings import Settings
from networks.base import Listener, Sender
from networks.spec import NetworkSpec
from networks.x.adapter import XDMListener, XMentionsListener, XSearchListener, XSender, make_x_client
from networks.x.settings import XSettings
from networks.x.text import X_MAX_WEIGHT, truncate_x, weighted_length


def x_listeners(x: XSettings, settings: Settings, session: requests.Session) -> list[Listener]:
    """Mentions, DMs and (with a query) keyword search, each as its settings switch them."""
    client = make_x_client(x, session)
    common: dict[str, Any] = {
        "brand_user_id": x.brand_user_id,
        "brand_username": x.brand_username,
        "page_size": x.page_size,
        "max_pages": x.max_pages,
        "retries": settings.fetch_retries,
    }
    listeners: list[Listener] = []
    if x.source_enabled("mentions"):
        listeners.append(XMentionsListener(client, **common))
    if x.source_enabled("dms"):
        listeners.append(XDMListener(client, **common))
    if x.search_query and x.source_enabled("search"):
        listeners.append(XSearchListener(client, query=x.search_query, **common))
    return listeners


def x_sender(x: XSettings, session: requests.Session) -> Sender:
    """Replies as tweets, DMs as DMs, from the brand account."""
    return XSender(make_x_client(x, session), brand_user_id=x.brand_user_id)


SPEC = NetworkSpec(
    name="x",
    label="X",
    settings=XSettings,
    listeners=x_listeners,
    sender=x_sender,
    # X counts by weight (URLs 23, emoji and CJK 2), the way its own composer does.
    reply_limit=X_MAX_WEIGHT,
    reply_length=weighted_length,
    fit_reply=truncate_x,
    greets_by_handle=True,
)
