"""How to start the review app as its own process (used by `escucha review` and `escucha demo`)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ground.settings import get_settings

APP = Path(__file__).resolve().parent / "app.py"
# The web app that serves APP: Streamlit plus the endpoints that set and clear the session cookie.
SERVER = Path(__file__).resolve().parent / "server.py"
# A desk for staff, not a Streamlit playground: no "Deploy" button, no usage statistics sent anywhere, and no
# error details in the browser (a visitor who is not signed in would see file paths and the database's host;
# the app logs them and shows a short message instead). XSRF protection stays on, as is Streamlit's default.
_FLAGS = (
    "--client.toolbarMode", "viewer",
    "--browser.gatherUsageStats", "false",
    "--client.showErrorDetails", "none",
    "--server.enableXsrfProtection", "true",
)  # fmt: skip


def streamlit_command(*, port: int, headless: bool = False) -> list[str]:
    """Return the command line that serves the review app on ``port`` at ``ESCUCHA_REVIEW_ADDRESS`` (loopback)."""
    address = get_settings().review_address
    cmd = [sys.executable, "-m", "streamlit", "run", str(SERVER), "--server.address", address]
    cmd += ["--server.port", str(port)]
    cmd += _FLAGS
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd


STOP_GRACE_S = 10.0  # how long a child may take to stop after SIGTERM before it is killed


def stop_child(child: subprocess.Popen[bytes], *, grace_s: float = STOP_GRACE_S) -> None:
    """Stop ``child`` with SIGTERM, then SIGKILL if it is still there after ``grace_s``; reap it either way."""
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class Stopped(KeyboardInterrupt):
    """This process was asked to stop (SIGTERM or SIGINT); raised so every ``finally`` runs."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into ``Stopped`` while inside, so cleanup runs instead of the process vanishing.

    Python's default for SIGTERM is to die at once, skipping ``finally``: children started here were left serving.
    """
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(cmd: list[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run ``cmd`` until it exits or this process is told to stop; the child never outlives us. Return its code."""
    with stop_on_signals():
        child = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter and app
        try:
            return child.wait()
        except Stopped:
            return 0
        finally:
            # A second signal while stopping must not skip the kill: ignore them from here on.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            stop_child(child)
