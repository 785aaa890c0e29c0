"""Test helpers: the real-browser harness (Debian's chromium through Playwright, the desk as a subprocess)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("ESCUCHA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
DOCS = Path(__file__).resolve().parents[2] / "docs"
WAIT_MS = 30_000


def shots_dir(tmp_path: Path) -> Path:
    """Where the screenshots go: docs/ only when ``ESCUCHA_SCREENSHOTS=docs`` asks for the README's pictures."""
    return DOCS if os.environ.get("ESCUCHA_SCREENSHOTS") == "docs" else tmp_path


def need_chromium() -> None:
    """Skip loudly without chromium; under CI a missing browser is a failure, not a skip."""
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    reason = f"chromium not found at {CHROMIUM}: the browser test did NOT run (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def settle(page: Page) -> None:
    """Wait until Streamlit has finished the current run, so what is read or shot is the page, not placeholders."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT_MS)
    page.wait_for_timeout(300)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, app: subprocess.Popen[bytes]) -> None:
    """Wait for the Streamlit server's health endpoint (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise RuntimeError(f"streamlit exited with {app.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not become healthy in 60 s")


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    """Open the desk in English and sign in."""
    page.goto(f"{base}/?lang=en")
    page.get_by_role("textbox", name="E-mail").fill(email)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
