"""Serving the receiver with uvicorn: in the foreground (`escucha webhooks`) or in a thread (tests, benches)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from sqlalchemy.engine import Engine

from ground.settings import Settings
from webhooks.receiver import Receiver

# How long a thread-served receiver may take to bind before it counts as failed.
START_DEADLINE_S = 15.0


def _config(receiver: Receiver, host: str, port: int) -> uvicorn.Config:
    # The client's address comes from the socket unless ESCUCHA_WEBHOOKS_TRUST_FORWARDED (read by the receiver).
    return uvicorn.Config(
        receiver.app, host=host, port=port, proxy_headers=False, server_header=False, log_level="warning",
        timeout_keep_alive=5, lifespan="off",
    )  # fmt: skip


def serve(settings: Settings, engine: Engine, *, port: int | None = None) -> None:
    """Serve the receiver until SIGTERM or Ctrl-C."""
    receiver = Receiver(settings, engine)
    uvicorn.Server(_config(receiver, settings.webhooks_address, port or settings.webhooks_port)).run()


@contextlib.contextmanager
def running(receiver: Receiver, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``receiver`` on a free loopback port in a thread; yield its base URL, stop it afterwards."""
    server = uvicorn.Server(_config(receiver, host, 0))
    thread = threading.Thread(target=server.run, name="webhooks", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_DEADLINE_S)
