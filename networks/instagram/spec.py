"""Instagram as the rest of Escucha sees it: settings, sources, sender and reply rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from ground.settings import Settings
from networks.base import Listener, Sender
from networks.instagram.adapter import (
    InstagramCommentsListener,
    InstagramMentionsListener,
    InstagramMessagesListener,
    InstagramSender,
    make_graph,
)
from networks.instagram.settings import InstagramSettings
from networks.instagram.text import IG_COMMENT_LIMIT, IG_MESSAGE_LIMIT, fit_instagram
from networks.instagram.webhook import WEBHOOK
from networks.spec import NetworkSpec


def instagram_listeners(ig: InstagramSettings, settings: Settings, session: requests.Session) -> list[Listener]:
    """Comments on the account's media, media that tag it, and its DMs, each as its settings switch them."""
    del settings  # Graph's retries live in the poller
    graph = make_graph(ig, session)
    options: dict[str, Any] = {"user_id": str(ig.user_id), "username": ig.username, "page_id": str(ig.page_id),
                               "page_size": ig.page_size, "max_pages": ig.max_pages}  # fmt: skip
    listeners: list[Listener] = []
    if ig.source_enabled("comments"):
        listeners.append(InstagramCommentsListener(graph, watch_days=ig.watch_days, **options))
    if ig.source_enabled("mentions"):
        listeners.append(InstagramMentionsListener(graph, **options))
    if ig.source_enabled("messages"):
        listeners.append(InstagramMessagesListener(graph, **options))
    return listeners


def instagram_sender(ig: InstagramSettings, session: requests.Session) -> Sender:
    """Comment replies, mention replies, DMs and private replies from the account."""
    return InstagramSender(make_graph(ig, session), user_id=str(ig.user_id), username=ig.username,
                           page_id=str(ig.page_id))  # fmt: skip


SPEC = NetworkSpec(
    name="instagram",
    label="Instagram",
    settings=InstagramSettings,
    listeners=instagram_listeners,
    sender=instagram_sender,
    reply_limit=IG_COMMENT_LIMIT,
    fit_reply=fit_instagram,
    greets_by_handle=True,
    dm_reply_limit=IG_MESSAGE_LIMIT,
    # A DM is answered within 24 h of the person's last message; a comment privately once, within 7 days.
    dm_window=timedelta(hours=24),
    private_reply_window=timedelta(days=7),
    webhook=WEBHOOK,
)
