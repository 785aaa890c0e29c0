"""One poller per source across processes: a PostgreSQL session-level advisory lock held for a poll.

The lock lives on a connection of its own, taken for the poll and closed after it, so a poller that dies
(killed, crashed, network gone) releases the source when the server notices its connection is gone and
another process takes the source over on its next tick. On SQLite there is a single process, and the
lease is always granted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from ground.turns import lock_key, turn


def lease_key(network: str, source: str) -> int:
    """A stable signed 64-bit key for ``network:source`` (the first 8 bytes of its SHA-256)."""
    return lock_key(f"{network}:{source}")


@contextlib.contextmanager
def source_lease(engine: Engine, network: str, source: str) -> Iterator[bool]:
    """Yield True while this process alone may poll ``network``/``source``; False when another holds it.

    Off PostgreSQL (one process, SQLite) there is no one to share with: always True.
    """
    with turn(engine, lease_key(network, source), threading.Lock()) as held:
        yield held
