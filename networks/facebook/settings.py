"""Facebook's settings (``ESCUCHA_FACEBOOK_…``): the Page, its token, the Graph API version, sources and paging."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from networks.settings import NetworkSettings, network_config

_GRAPH_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}")


class FacebookSettings(NetworkSettings):
    """A Facebook Page through facebook-sdk's ``GraphAPI`` (``appsecret_proof`` when the app secret is set)."""

    name: ClassVar[str] = "facebook"
    model_config = network_config("facebook")

    page_id: str | None = None
    page_token: SecretStr | None = None
    app_secret: SecretStr | None = None
    # The token we chose when subscribing the Page's webhooks; Facebook echoes it in the hub.challenge handshake.
    verify_token: SecretStr | None = None
    graph_version: str = "v21.0"
    feed_enabled: bool = True
    messages_enabled: bool = True
    feed_poll_seconds: float | None = Field(default=None, gt=0)
    messages_poll_seconds: float | None = Field(default=None, gt=0)
    page_size: int = Field(default=25, ge=1, le=100)
    max_pages: int = Field(default=3, ge=1)
    # A post's comments are read on every poll until it has had no activity for this many days.
    watch_days: int = Field(default=30, ge=1, le=365)

    def identity(self) -> dict[str, str]:
        """The Page's id."""
        return {"facebook_page_id": self.page_id or ""}

    def configured(self) -> bool:
        """Whether Facebook is on and has a page id and a page token."""
        return self.enabled and bool(self.page_id) and self.page_token is not None

    @field_validator("graph_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        # It becomes part of every Graph URL path: only a version such as v21.0 may go there.
        if not _GRAPH_VERSION.fullmatch(value):
            raise ValueError("a Graph API version looks like v21.0")
        return value
