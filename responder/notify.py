"""Desk alerts pushed to a team chat or e-mail gateway through one incoming-webhook URL (optional).

The sweeps only write ``alert`` rows; this job, on its own schedule and thread, POSTs the ones not yet pushed,
each with a few tries and backoff (tenacity). An alert is marked pushed only after the receiver said 2xx, so a
receiver that is down loses nothing: the next run starts again from the oldest unpushed alert. No database
transaction is open while a request waits, so a slow receiver holds up no sweep and no approval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from tenacity import Retrying, retry_if_exception, retry_if_exception_type, stop_after_attempt, wait_exponential

from ground.settings import Settings
from models.tables import Alert, Staff, utcnow

log = logging.getLogger(__name__)

# After this many failed runs an alert is no longer pushed (it stays in the desk's notifications).
MAX_PUSH_RUNS = 20
BATCH = 100


class Refused(Exception):
    """The receiver answered, but not with 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status

    @property
    def temporary(self) -> bool:
        """Whether trying again later may work (server errors, rate limits, timeouts)."""
        return self.status >= 500 or self.status in (408, 429)


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    """Where and how alerts are pushed; without a URL nothing is."""

    url: str | None = None
    attempts: int = 3
    timeout_s: float = 5.0
    backoff_s: float = 0.5


def notify_options(settings: Settings) -> NotifyOptions:
    """The push options from the settings (``ESCUCHA_NOTIFY_*``)."""
    url = settings.notify_webhook_url.get_secret_value() if settings.notify_webhook_url else None
    return NotifyOptions(url=url, attempts=settings.notify_attempts, timeout_s=settings.notify_timeout_seconds)


@dataclass(slots=True)
class PushResult:
    """What one run pushed, and what it left for the next."""

    pushed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def payload(alert: Alert, name: str) -> dict[str, Any]:
    """The JSON an alert is pushed as: ``text`` for chat tools (Slack, Mattermost, Teams), the fields for others."""
    return {
        "text": f"Escucha · {alert.kind} · for {name}: {alert.message}",
        "id": alert.id,
        "kind": alert.kind,
        "post_id": alert.post_id,
        "staff": name,
        "created_at": alert.created_at.isoformat(),
    }


def _post(http: requests.Session, options: NotifyOptions, body: dict[str, Any]) -> None:
    assert options.url is not None
    retrying = Retrying(
        stop=stop_after_attempt(options.attempts),
        wait=wait_exponential(multiplier=options.backoff_s, max=options.backoff_s * 8),
        # Connection errors and timeouts, 5xx, 408 and 429 are tried again; another 4xx will not change.
        retry=retry_if_exception_type(requests.RequestException)
        | retry_if_exception(lambda exc: isinstance(exc, Refused) and exc.temporary),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            answer = http.post(options.url, json=body, timeout=options.timeout_s)
            if not 200 <= answer.status_code < 300:
                raise Refused(answer.status_code)


def _pending(engine: Engine, limit: int) -> list[tuple[Alert, str]]:
    with Session(engine, expire_on_commit=False) as session:
        rows = session.execute(
            select(Alert, col(Staff.name))
            .join(Staff, col(Staff.id) == col(Alert.staff_id))
            .where(col(Alert.pushed_at).is_(None), col(Alert.push_attempts) < MAX_PUSH_RUNS)
            .order_by(col(Alert.id))
            .limit(limit)
        ).all()
        return [(alert, name) for alert, name in rows]


def _mark(engine: Engine, alert_id: int, *, pushed: bool) -> None:
    values: dict[str, Any] = {"pushed_at": utcnow()} if pushed else {"push_attempts": col(Alert.push_attempts) + 1}
    with Session(engine) as session:
        session.execute(update(Alert).where(col(Alert.id) == alert_id).values(**values))
        session.commit()


def push_pending(engine: Engine, options: NotifyOptions, *, limit: int = BATCH) -> PushResult:
    """Push the alerts not pushed yet, oldest first; stop at a receiver that is down (the next run goes on)."""
    result = PushResult()
    if not options.url:
        return result
    with requests.Session() as http:
        for alert, name in _pending(engine, limit):
            assert alert.id is not None
            try:
                _post(http, options, payload(alert, name))
            except (requests.RequestException, Refused) as exc:
                _mark(engine, alert.id, pushed=False)
                result.failed.append(alert.id)
                # The URL carries the hook's token: the log names the alert and the error's kind only.
                log.warning("alert %s not pushed to the team webhook: %s", alert.id, _why(exc))
                if not isinstance(exc, Refused) or exc.temporary:
                    break  # the receiver is down or busy: the rest wait for the next run, in order
                continue
            _mark(engine, alert.id, pushed=True)
            result.pushed.append(alert.id)
    return result


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Refused) else type(exc).__name__
