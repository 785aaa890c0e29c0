"""Escucha's settings, read from the environment (prefix ``ESCUCHA_``) or a ``.env`` file."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that people paste from examples; refusing them early beats a confusing 401 later.
_PLACEHOLDERS = {"changeme", "change-me", "xxx", "your-token-here", "token"}
# The longest interval, timeout or lease a ``*_seconds`` setting may give: a week. Longer is a typo, and
# ``now + timedelta(seconds=...)`` in the scheduler overflows long before infinity.
MAX_SECONDS = 7 * 86_400.0
_GRAPH_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}")

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of Escucha; secrets are ``SecretStr`` so they never print."""

    # No inf/nan in any number: an endless poll interval or an infinite budget is a typo, not a plan.
    model_config = SettingsConfigDict(
        env_prefix="ESCUCHA_", env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False
    )

    database_url: str = "sqlite:///escucha.db"
    # The labelled training corpora (`escucha train --data-dir`; docs/design.md says how to assemble them). They
    # are not ours to redistribute, so nothing in the repo depends on them; when set, the demo seeds from them too.
    data_dir: Path | None = None

    # Loopback sandbox networks: when set, both clients talk to this base URL instead of the real APIs.
    sandbox_url: str | None = None

    # X (API v2 through tweepy).
    x_enabled: bool = True
    x_bearer_token: SecretStr | None = None
    x_consumer_key: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    x_access_token: SecretStr | None = None
    x_access_token_secret: SecretStr | None = None
    x_brand_user_id: str | None = None
    x_brand_username: str | None = None
    x_search_query: str | None = None
    x_poll_seconds: float = Field(default=60.0, gt=0)
    # Each X source can be switched off or polled at its own pace (None: ``x_poll_seconds``).
    x_mentions_enabled: bool = True
    x_search_enabled: bool = True
    x_dms_enabled: bool = True
    x_mentions_poll_seconds: float | None = Field(default=None, gt=0)
    x_search_poll_seconds: float | None = Field(default=None, gt=0)
    x_dms_poll_seconds: float | None = Field(default=None, gt=0)
    x_page_size: int = Field(default=100, ge=10, le=100)
    x_max_pages: int = Field(default=10, ge=1)
    # Monthly read budget over all X sources (None: unlimited); polling slows down to stay within it.
    x_monthly_post_budget: int | None = Field(default=None, gt=0)
    x_monthly_request_budget: int | None = Field(default=None, gt=0)
    x_monthly_cost_budget_usd: float | None = Field(default=None, gt=0)
    # Pay-per-use price estimate per post read and per request (USD).
    x_cost_per_post_usd: float = Field(default=0.005, ge=0)
    x_cost_per_request_usd: float = Field(default=0.0, ge=0)

    # Facebook (Graph API through facebook-sdk).
    facebook_enabled: bool = True
    facebook_page_id: str | None = None
    facebook_page_token: SecretStr | None = None
    facebook_app_secret: SecretStr | None = None
    facebook_graph_version: str = "v21.0"
    facebook_poll_seconds: float = Field(default=60.0, gt=0)
    facebook_feed_enabled: bool = True
    facebook_messages_enabled: bool = True
    facebook_feed_poll_seconds: float | None = Field(default=None, gt=0)
    facebook_messages_poll_seconds: float | None = Field(default=None, gt=0)
    facebook_page_size: int = Field(default=25, ge=1, le=100)
    facebook_max_pages: int = Field(default=3, ge=1)

    # Listener robustness: retries with backoff inside one fetch for temporary failures (0: none).
    fetch_retries: int = Field(default=2, ge=0, le=10)
    # Seconds an HTTP call to a network may take before it counts as a temporary failure.
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # A reply left in ``sending`` longer than this lost its sender (a crash) and is looked up on the
    # network, then resent only if absent. Keep it far above the HTTP timeout: a live sender must not be
    # second-guessed (the fault-campaign tests shorten both).
    sending_lease_seconds: float = Field(default=300.0, gt=0)
    # Keep the scheduler's jobs in the database so schedules (and rate-limit pauses) survive restarts.
    persistent_jobs: bool = True

    # Customer care: automatic messages, sent through the outbox like any reply.
    ack_dms: bool = True
    delay_updates: bool = True
    satisfaction_survey: bool = False

    # Pipeline cadence.
    score_seconds: float = Field(default=2.0, gt=0)
    assign_seconds: float = Field(default=2.0, gt=0)
    send_seconds: float = Field(default=2.0, gt=0)
    batch_size: int = Field(default=256, gt=0, le=10_000)

    def poll_seconds(self, network: str, source: str) -> float:
        """The polling interval of one source: its own setting, else its network's."""
        own = getattr(self, f"{network}_{source}_poll_seconds", None)
        return float(own if own is not None else getattr(self, f"{network}_poll_seconds", 60.0))

    def source_enabled(self, network: str, source: str) -> bool:
        """Whether one source is switched on (its network's switch and its own)."""
        return bool(getattr(self, f"{network}_enabled", True) and getattr(self, f"{network}_{source}_enabled", True))

    @field_validator(
        "x_bearer_token",
        "x_consumer_key",
        "x_consumer_secret",
        "x_access_token",
        "x_access_token_secret",
        "facebook_page_token",
        "facebook_app_secret",
    )
    @classmethod
    def _refuse_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("looks like a placeholder; set the real secret or leave it unset")
        return value

    @field_validator("*")
    @classmethod
    def _bounded_seconds(cls, value: Any, info: ValidationInfo) -> Any:
        if str(info.field_name).endswith("_seconds") and isinstance(value, int | float) and value > MAX_SECONDS:
            raise ValueError(f"at most {MAX_SECONDS:.0f} seconds (a week)")
        return value

    @field_validator("facebook_graph_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        # It becomes part of every Graph URL path: only a version such as v21.0 may go there.
        if not _GRAPH_VERSION.fullmatch(value):
            raise ValueError("a Graph API version looks like v21.0")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
