"""Escucha's settings, read from the environment (prefix ``ESCUCHA_``) or a ``.env`` file."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Values that people paste from examples; refusing them early beats a confusing 401 later.
_PLACEHOLDERS = {"changeme", "change-me", "xxx", "your-token-here", "token"}
# The longest interval, timeout or lease a ``*_seconds`` setting may give: a week. Longer is a typo, and
# ``now + timedelta(seconds=...)`` in the scheduler overflows long before infinity.
MAX_SECONDS = 7 * 86_400.0

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of Escucha; secrets are ``SecretStr`` so they never print."""

    # No inf/nan in any number: an endless poll interval or an infinite budget is a typo, not a plan.
    model_config = SettingsConfigDict(
        env_prefix="ESCUCHA_", env_file=".env", env_file_encoding="utf-8", extra="allow", allow_inf_nan=False
    )

    database_url: str = "sqlite:///escucha.db"
    # The labelled training corpora (`escucha train --data-dir`; docs/design.md says how to assemble them). They
    # are not ours to redistribute, so nothing in the repo depends on them; when set, the demo seeds from them too.
    data_dir: Path | None = None

    # Loopback sandbox networks: when set, both clients talk to this base URL instead of the real APIs.
    sandbox_url: str | None = None

    # Each network's own settings (ESCUCHA_X_…, ESCUCHA_FACEBOOK_…) live in its folder, networks/<name>/settings.py;
    # keyword arguments such as ``x_brand_user_id=…`` given here are handed to it (``Settings.section``).

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
    # The satisfaction question (1–5 and a comment) after every answer in a private conversation (DMs, Messenger);
    # on by default.
    satisfaction_survey: bool = True
    # Ask it under public answers too (mentions, comments): off by default, see responder.care.ask_satisfaction.
    satisfaction_public: bool = False
    # Ask the promoter question (0–10, "would you recommend us?") instead of the 1–5 one; the default until an
    # admin sets the switch on the desk's Admin page (stored in the database, responder.promoter).
    satisfaction_promoter: bool = False
    # Promises come from a forecast (responder.forecast): never sooner than the floor, with this safety margin
    # on the forecast working time (0.5: half as long again).
    promise_floor_minutes: float = Field(default=15.0, ge=1, le=24 * 60)
    promise_margin: float = Field(default=0.5, ge=0, le=10)

    # Pipeline cadence.
    score_seconds: float = Field(default=2.0, gt=0)
    assign_seconds: float = Field(default=2.0, gt=0)
    send_seconds: float = Field(default=2.0, gt=0)
    # On PostgreSQL the commits that create work wake scoring, assignment and sending (LISTEN/NOTIFY); their ticks
    # then only catch what a lost notification missed, and come this often (never more often than the above).
    wake_stages: bool = True
    wake_safety_seconds: float = Field(default=10.0, gt=0)
    # The SLA sweep (redistribution, predicted and actual breaches) and the knowledge upkeep (what staff did with
    # suggestions, new answers embedded) run with the care stage, but at most this often per worker: they read
    # every open post or suggestion, and due times are minutes apart, while acknowledgements cannot wait. A breach
    # is escalated within about this plus one care tick.
    sla_seconds: float = Field(default=10.0, gt=0)
    upkeep_seconds: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=256, gt=0, le=10_000)
    # Threads each worker gives its models (ONNX Runtime, PyTorch) and numpy's BLAS; unset: one per core. With
    # several workers on one machine give each cores ÷ workers: two workers' pools of two on two cores stalled each
    # other (docs/capacity.md, "A 2-core Ice Lake Xeon": 34.4 → 38.0 posts/s).
    model_threads: int | None = Field(default=None, ge=1, le=256)
    # Learning from corrections (classifier/refit_job.py): how often the classifier worker looks, and how many
    # new staff corrections it waits for before it refits the heads.
    refit_seconds: float = Field(default=600.0, gt=0)
    refit_min_corrections: int = Field(default=50, ge=2, le=100_000)

    # The review app: the address it listens on (loopback unless a reverse proxy on another host needs more), and
    # whether to believe the proxy's X-Forwarded-For for the client's address (only behind a proxy that sets it:
    # anyone reaching the app directly could otherwise claim any address and dodge the sign-in throttle).
    review_address: str = "127.0.0.1"
    review_trust_forwarded: bool = False
    # Desk sessions (models.sessions): the key that signs their cookies (unset: one made and kept in the database),
    # how long a signed-in browser may sit idle, and how long a sign-in lasts at most.
    session_secret: SecretStr | None = None
    session_idle_minutes: float = Field(default=60.0, gt=0, le=7 * 24 * 60)
    session_max_hours: float = Field(default=12.0, gt=0, le=30 * 24)

    # The webhook receiver (`escucha webhooks`): where it listens, the largest body it reads, how old a delivery's
    # newest event may be (Facebook retries for 36 hours), how far ahead of our clock, and each source address's
    # allowance (requests per minute, refilled continuously; a network's own bursts fit well inside it).
    webhooks_address: str = "127.0.0.1"
    webhooks_port: int = Field(default=8600, ge=1, le=65535)
    webhooks_max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    webhooks_replay_window_seconds: float = Field(default=172_800.0, gt=0)
    webhooks_clock_skew_seconds: float = Field(default=300.0, ge=0)
    webhooks_rate_per_minute: float = Field(default=600.0, gt=0)
    webhooks_trust_forwarded: bool = False

    # Team notifications (responder.notify): a chat or e-mail gateway's incoming-webhook URL that each desk alert is
    # POSTed to as JSON (a secret: such URLs carry their token), tries per alert with backoff, and each call's limit.
    notify_webhook_url: SecretStr | None = None
    notify_attempts: int = Field(default=3, ge=1, le=10)
    notify_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    def section(self, prefix: str) -> dict[str, Any]:
        """The keyword values given for one network, without its prefix (``x_page_size`` -> ``page_size``)."""
        head = f"{prefix}_"
        return {
            key[len(head) :]: value.get_secret_value() if isinstance(value, SecretStr) else value
            for key, value in (self.model_extra or {}).items()
            if key.startswith(head)
        }

    @model_validator(mode="after")
    def _mask_network_values(self) -> Settings:
        # A network's values are checked by its own settings class (networks/<name>/settings.py); until then every
        # text among them is kept as a secret, so a token given here never shows in a repr, a dump or a log line.
        for key, value in (self.model_extra or {}).items():
            if isinstance(value, str):
                self.model_extra[key] = SecretStr(value)  # type: ignore[index]
        return self

    @field_validator("*")
    @classmethod
    def _bounded_seconds(cls, value: Any, info: ValidationInfo) -> Any:
        return bounded_seconds(value, str(info.field_name))

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        value = refuse_placeholder(value)
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("needs at least 32 characters (e.g. the output of: openssl rand -hex 32)")
        return value

    @field_validator("notify_webhook_url")
    @classmethod
    def _notify_webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^https?://[^/\s:]+", value.get_secret_value()):
            raise ValueError("must be an http or https URL with a host, e.g. https://chat.example.com/hooks/abc")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("sandbox_url")
    @classmethod
    def _sandbox_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s:]+", value):
            raise ValueError("must be an http or https URL with a host, e.g. http://127.0.0.1:8000")
        return value

    @field_validator("sending_lease_seconds")
    @classmethod
    def _lease_beyond_timeout(cls, value: float, info: ValidationInfo) -> float:
        # A lease shorter than one call would second-guess a live sender: its reply could go out twice.
        timeout = info.data.get("http_timeout_seconds")
        if timeout is not None and value <= timeout:
            raise ValueError(f"must be longer than ESCUCHA_HTTP_TIMEOUT_SECONDS ({timeout:g} s)")
        return value


def check_database_url(value: str) -> str:
    """Refuse a database URL that would leave libpq to guess: PostgreSQL needs a host and a database name."""
    example = "e.g. postgresql://escucha@db.example/escucha or sqlite:///escucha.db"
    try:
        url = make_url(value)
        port = url.port  # an out-of-range or non-numeric port fails here or below
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL; {example}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return value  # sqlite:///FILE, or sqlite:// for a database in memory
    if backend not in ("postgresql", "postgres"):
        raise ValueError(f"{backend!r} is not supported: use sqlite or postgresql, {example}")
    if port is not None and not 0 < port < 65_536:
        raise ValueError(f"port {port} is out of range (1-65535)")
    # libpq also takes both from the query (a Unix socket folder as host=/run/postgresql); without either it
    # picks a default database on a default socket: whatever that is, it is not a choice a person made.
    if not (url.host or url.query.get("host")):
        raise ValueError(f"a PostgreSQL URL needs a host; {example}")
    if not (url.database or url.query.get("dbname")):
        raise ValueError(f"a PostgreSQL URL needs a database name; {example}")
    return value


def settings_problem(exc: ValidationError, prefix: str) -> str:
    """One line for refused settings, naming each variable (``ESCUCHA_…``); never the refused value itself."""
    parts = []
    for error in exc.errors():
        name = prefix + "_".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return "; ".join(parts).replace("\n", " ")


def refuse_placeholder(value: SecretStr | None) -> SecretStr | None:
    """Refuse a secret that people paste from examples ("changeme"); refusing early beats a confusing 401 later."""
    if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
        raise ValueError("looks like a placeholder; set the real secret or leave it unset")
    return value


def bounded_seconds(value: Any, name: str) -> Any:
    """Refuse a ``*_seconds`` value over a week: longer is a typo, and the scheduler's clock would overflow."""
    if name.endswith("_seconds") and isinstance(value, int | float) and value > MAX_SECONDS:
        raise ValueError(f"at most {MAX_SECONDS:.0f} seconds (a week)")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
