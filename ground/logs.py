"""Logging for the CLI: rich output on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import sys

from rich.logging import RichHandler

from ground.redact import install as install_redaction


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once for a CLI process; secrets are masked in every record it logs."""
    install_redaction()
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(rich_tracebacks=False, show_path=False)
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # APScheduler logs every job run at INFO; that drowns the lines a person needs.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
