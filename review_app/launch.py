"""How to start the review app as its own process (used by `escucha review` and `escucha demo`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ground.settings import get_settings

APP = Path(__file__).resolve().parent / "app.py"
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
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", address, "--server.port", str(port)]
    cmd += _FLAGS
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd
