"""Test helpers: incoming."""

from __future__ import annotations

from datetime import UTC, datetime

from networks.base import IncomingAuthor, IncomingPost

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def incoming(external_id: str, text: str = "hola", *, kind: str = "mention", reply_to: str | None = None,
             author: str = "u1", followers: int = 10, network: str = "x") -> IncomingPost:  # fmt: skip
    """An incoming post as a listener would hand it over."""
    return IncomingPost(
        network=network, external_id=external_id, kind=kind, source="mentions", text=text, created_at=T,
        author=IncomingAuthor(network=network, external_id=author, username=author, followers_count=followers),
        in_reply_to_external_id=reply_to, is_public=kind != "dm", raw={"id": external_id},
    )  # fmt: skip
