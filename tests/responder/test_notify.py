"""Alerts pushed to a team webhook, against a real loopback HTTP receiver that fails, hangs and recovers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.settings import Settings
from models.tables import Alert
from responder.assign import assign_pending
from responder.notify import NotifyOptions, notify_options, push_pending
from tests.support.factories import scored_post, staff


@dataclass
class Receiver:
    """A loopback HTTP receiver that answers each POST with the next scripted status (then 200)."""

    script: list[int] = field(default_factory=list)
    hang_s: float = 0.0
    got: list[dict[str, object]] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.got.append(body)
            if state.hang_s:
                time.sleep(state.hang_s)
            status = state.script.pop(0) if state.script else 200
            if status == 200:
                state.accepted.append(int(body["id"]))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/team"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _alerts(engine: Engine, n_posts: int) -> list[int]:
    """A crisis post per index: each alerts its owner and the manager (two alerts a post)."""
    with Session(engine) as session:
        staff(session, "Sara Senior", senior=True)
        staff(session, "Mara Boss", role="manager", available=False)
        for _ in range(n_posts):
            scored_post(session, crisis=True, urgency=100)
        assign_pending(session)
        session.commit()
        return list(session.execute(select(col(Alert.id)).order_by(col(Alert.id))).scalars())


def test_a_failing_receiver_is_retried_and_nothing_is_lost(engine: Engine, receiver: Receiver) -> None:
    ids = _alerts(engine, 2)
    assert len(ids) == 4
    options = NotifyOptions(url=receiver.url, attempts=3, timeout_s=2, backoff_s=0.01)
    receiver.script = [500, 503, 429, 500]  # the first run's three tries all fail; the second run's first too
    first = push_pending(engine, options)
    assert first.pushed == [] and first.failed == [ids[0]] and len(receiver.got) == 3
    second = push_pending(engine, options)
    assert second.pushed == ids and second.failed == []
    assert receiver.accepted == ids  # each alert taken once, in order
    with Session(engine) as session:
        rows = list(session.execute(select(Alert).order_by(col(Alert.id))).scalars())
        assert all(r.pushed_at is not None for r in rows) and [r.push_attempts for r in rows] == [1, 0, 0, 0]
    assert push_pending(engine, options).pushed == []  # nothing is pushed twice
    crisis = receiver.got[-1]
    assert crisis["kind"] == "crisis" and "Escucha · crisis" in str(crisis["text"])


def test_a_refused_alert_does_not_hold_up_the_others(engine: Engine, receiver: Receiver) -> None:
    ids = _alerts(engine, 1)
    receiver.script = [400]  # a 4xx will not change by trying again: one try, then the next alert
    result = push_pending(engine, NotifyOptions(url=receiver.url, attempts=3, backoff_s=0.01))
    assert result.failed == [ids[0]] and result.pushed == ids[1:] and len(receiver.got) == len(ids)


def test_a_hanging_receiver_never_blocks_the_sweep(engine: Engine, receiver: Receiver) -> None:
    _alerts(engine, 1)
    receiver.hang_s = 1.5
    options = NotifyOptions(url=receiver.url, attempts=1, timeout_s=5)
    pusher = threading.Thread(target=push_pending, args=(engine, options))
    pusher.start()
    time.sleep(0.3)  # the push is now waiting for the receiver
    start = time.monotonic()
    with Session(engine) as session:
        scored_post(session, crisis=True, urgency=100)
        assert assign_pending(session).assigned == 1
        session.commit()
    took = time.monotonic() - start
    assert pusher.is_alive(), "the push should still be waiting on the receiver"
    pusher.join()
    assert took < 1.0, f"the sweep waited {took:.2f} s for the webhook"
    with Session(engine) as session:
        assert len(list(session.execute(select(Alert)).scalars())) == 4


def test_no_url_pushes_nothing_and_a_bad_url_is_refused(engine: Engine) -> None:
    _alerts(engine, 1)
    assert push_pending(engine, NotifyOptions()).pushed == []
    with pytest.raises(ValidationError, match="http or https URL"):
        Settings(notify_webhook_url="file:///etc/passwd")
    settings = Settings(notify_webhook_url="https://chat.example.com/hooks/secret-token")
    assert "secret-token" not in repr(settings)
    assert notify_options(settings).url == "https://chat.example.com/hooks/secret-token"
