"""X's settings (``ESCUCHA_X_…``): the app's keys, the brand account, the sources, paging and the read budget."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from networks.settings import NetworkSettings, network_config


class XSettings(NetworkSettings):
    """X API v2 through tweepy; OAuth 1.0a user context for mentions, DMs and replies."""

    name: ClassVar[str] = "x"
    model_config = network_config("x")

    bearer_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    brand_user_id: str | None = None
    brand_username: str | None = None
    # Brand-keyword recent search (hits that do not mention the brand are for a manual answer).
    search_query: str | None = None
    # Each source can be switched off or polled at its own pace (None: ``poll_seconds``).
    mentions_enabled: bool = True
    search_enabled: bool = True
    dms_enabled: bool = True
    mentions_poll_seconds: float | None = Field(default=None, gt=0)
    search_poll_seconds: float | None = Field(default=None, gt=0)
    dms_poll_seconds: float | None = Field(default=None, gt=0)
    page_size: int = Field(default=100, ge=10, le=100)
    max_pages: int = Field(default=10, ge=1)
    # X bills reads per post (pay-per-use estimate).
    cost_per_post_usd: float = Field(default=0.005, ge=0)

    def identity(self) -> dict[str, str]:
        """The brand handle and the keyword query."""
        return {"x_brand_username": self.brand_username or "", "x_search_query": self.search_query or ""}

    def brand_terms(self) -> list[str]:
        """The search query's words and the brand's handle."""
        return [term for term in (self.search_query, self.brand_username) if term]

    def configured(self) -> bool:
        """Whether X is on and has the user-context keys that mentions, DMs and replies need."""
        keys = (self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret)
        return self.enabled and all(k is not None for k in keys)
