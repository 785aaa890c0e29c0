"""What every network's settings share: the switch, the polling pace, paging, a read budget, and checked secrets."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ground.settings import Settings, bounded_seconds, refuse_placeholder


def network_config(name: str) -> SettingsConfigDict:
    """The settings config of one network: variables ``ESCUCHA_<NAME>_…`` from the environment or ``.env``."""
    return SettingsConfigDict(
        env_prefix=f"ESCUCHA_{name.upper()}_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        allow_inf_nan=False,
    )


class NetworkSettings(BaseSettings):
    """One network's knobs; a subclass adds its credentials and names its sources (``<source>_enabled``…)."""

    name: ClassVar[str]

    enabled: bool = True
    poll_seconds: float = Field(default=60.0, gt=0)
    # Monthly read budget over the network's sources (None: unlimited); polling slows to stay within it.
    monthly_post_budget: int | None = Field(default=None, gt=0)
    monthly_request_budget: int | None = Field(default=None, gt=0)
    monthly_cost_budget_usd: float | None = Field(default=None, gt=0)
    # Pay-per-use price estimate per post read and per request (USD).
    cost_per_post_usd: float = Field(default=0.0, ge=0)
    cost_per_request_usd: float = Field(default=0.0, ge=0)

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """This network's settings: its environment variables, overridden by keywords given to ``settings``."""
        return cls(**settings.section(cls.name))

    def configured(self) -> bool:
        """Whether the network is switched on and has the credentials its sources need."""
        raise NotImplementedError

    def identity(self) -> dict[str, str]:
        """The non-secret settings that say which account is watched (shown to admins)."""
        return {}

    def brand_terms(self) -> list[str]:
        """Words every post found through the brand's own name contains (left out of complaint topics)."""
        return []

    def source_poll_seconds(self, source: str) -> float:
        """One source's polling interval: its own ``<source>_poll_seconds``, else the network's."""
        own = getattr(self, f"{source}_poll_seconds", None)
        return float(own if own is not None else self.poll_seconds)

    def source_enabled(self, source: str) -> bool:
        """Whether one source is switched on (the network's switch and its own ``<source>_enabled``)."""
        return self.enabled and bool(getattr(self, f"{source}_enabled", True))

    @field_validator("*")
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, SecretStr):
            refuse_placeholder(value)
        return bounded_seconds(value, str(info.field_name))
