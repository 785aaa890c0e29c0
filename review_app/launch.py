"""How to start the review app as its own process (used by `escucha review` and `escucha demo`)."""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
# A desk for staff, not a Streamlit playground: no "Deploy" button, no usage statistics sent anywhere.
_FLAGS = ("--client.toolbarMode", "viewer", "--browser.gatherUsageStats", "false")


def streamlit_command(*, port: int, headless: bool = False) -> list[str]:
    """Return the command line that serves the review app on ``port``."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), *_FLAGS]
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd
