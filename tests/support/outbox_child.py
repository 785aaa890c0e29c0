"""A sender process for the crash tests: sends one reply through the sandbox, maybe dying on the way.

Usage: python -m tests.support.outbox_child DB_URL SETTINGS_JSON REPLY_ID (ESCUCHA_OUTBOX_CRASH_AT names the point).
"""

from __future__ import annotations

import json
import sys

from ground.db import make_engine
from ground.settings import Settings
from networks.registry import build_senders
from responder.outbox import send_one


def main() -> int:
    """Send the reply and print the outcome (unless the crash hook kills the process first)."""
    db_url, settings_path, reply_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(settings_path, encoding="utf-8") as fh:
        settings = Settings(database_url=db_url, **json.load(fh))
    outcome = send_one(make_engine(db_url), build_senders(settings), reply_id)
    print(outcome.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
