"""Instagram's settings (``ESCUCHA_INSTAGRAM_…``): the professional account, its Page's token, the sources, paging."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from networks.settings import NetworkSettings, network_config

_GRAPH_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}")
_DIGITS = re.compile(r"\d{1,32}")


class InstagramSettings(NetworkSettings):
    """An Instagram professional account through facebook-sdk's ``GraphAPI`` (Instagram API with Facebook Login)."""

    name: ClassVar[str] = "instagram"
    model_config = network_config("instagram")

    # The professional account's id (``17841…``) and @username, and the Facebook Page it is linked to.
    user_id: str | None = None
    username: str = ""
    page_id: str | None = None
    # The Page's access token with instagram_basic, instagram_manage_comments and instagram_manage_messages.
    token: SecretStr | None = None
    app_secret: SecretStr | None = None
    # The token typed when subscribing the app's ``instagram`` webhooks (the hub.challenge handshake).
    verify_token: SecretStr | None = None
    graph_version: str = "v21.0"
    comments_enabled: bool = True
    mentions_enabled: bool = True
    messages_enabled: bool = True
    comments_poll_seconds: float | None = Field(default=None, gt=0)
    mentions_poll_seconds: float | None = Field(default=None, gt=0)
    messages_poll_seconds: float | None = Field(default=None, gt=0)
    page_size: int = Field(default=25, ge=1, le=100)
    max_pages: int = Field(default=3, ge=1)
    # A media's comments are read while it has had activity within this many days.
    watch_days: int = Field(default=30, ge=1, le=365)

    def identity(self) -> dict[str, str]:
        """The account's id and username."""
        return {"instagram_user_id": self.user_id or "", "instagram_username": self.username}

    def brand_terms(self) -> list[str]:
        """The account's @username: every mention contains it."""
        return [self.username.lower()] if self.username else []

    def configured(self) -> bool:
        """Whether Instagram is on and has the account id, its Page's id and a token."""
        return self.enabled and bool(self.user_id) and bool(self.page_id) and self.token is not None

    @field_validator("user_id", "page_id")
    @classmethod
    def _numeric_id(cls, value: str | None) -> str | None:
        # Both go into request paths: only Graph's numeric ids may.
        if value is not None and not _DIGITS.fullmatch(value):
            raise ValueError("an Instagram account or Page id is digits only")
        return value

    @field_validator("graph_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        if not _GRAPH_VERSION.fullmatch(value):
            raise ValueError("a Graph API version looks like v21.0")
        return value
