"""One poller per source across processes: a PostgreSQL session-level advisory lock held for a poll.

The lock lives on a connection of its own, taken for the poll and closed after it, so a poller that dies
(killed, crashed, network gone) releases the source when the server notices its connection is gone and
another process takes the source over on its next tick. On SQLite there is a single process, and the
lease is always granted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def lease_key(network: str, source: str) -> int:
    """A stable signed 64-bit key for ``network:source`` (the first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(f"{network}:{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def source_lease(engine: Engine, network: str, source: str) -> Iterator[bool]:
    """Yield True while this process alone may poll ``network``/``source``; False when another holds it."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lease_key(network, source)
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
                    # The lock must not go back to the pool with the connection: drop the connection.
                    log.warning("could not release the lease of %s/%s; dropping its connection", network, source)
                    conn.invalidate()
    finally:
        conn.close()
