"""One worker at a time for a periodic job: a PostgreSQL session advisory lock, tried and never waited for."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def turn(engine: Engine, key: int, local: threading.Lock) -> Iterator[bool]:
    """Yield True while this caller alone holds the turn ``key``; False when another worker (or thread) holds it.

    On PostgreSQL a session advisory lock on a connection of its own (so two threads of one process contend too);
    elsewhere (SQLite, one process) the process's ``local`` lock.
    """
    if engine.dialect.name != "postgresql":
        if not local.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            local.release()
        return
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield held
        finally:
            if held:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                except Exception:
                    # A session lock must not go back to the pool with its connection: drop the connection.
                    log.warning("could not release advisory lock %s; dropping its connection", key)
                    conn.invalidate()
    finally:
        conn.close()
