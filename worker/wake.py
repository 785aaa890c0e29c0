"""Stages woken by new work: one ``LISTEN`` connection per worker process, and a runner per stage.

The commits that create work send a ``NOTIFY`` (``ground/wake.py``); the listener thread turns each one for a
stage this process runs into a run of that stage, instead of waiting for its tick. The tick stays as the safety
net: a notification lost while the listener was reconnecting is caught by the next tick, and every stage is run
once after each (re)connection. Claims stay ``FOR UPDATE SKIP LOCKED``, so a woken stage and a ticking one, in
this process or another, never take the same rows.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from ground.wake import CHANNEL, parse

log = logging.getLogger(__name__)

# A woken stage runs at most this often: at 50 deliveries a second each one notifies, and one run per
# notification would score and sweep one post at a time; waiting this long gathers them into one batch.
MIN_GAP_S = 0.25
# How long the listener waits before connecting again after losing its connection.
RECONNECT_S = 1.0
# How often the listener looks up from its connection to see whether it should stop.
POLL_S = 0.5


class StageRunner:
    """Runs one stage, never twice at once; a request that comes while it runs makes it run once more after."""

    def __init__(self, name: str, func: Callable[[], Any], *, min_gap: float = MIN_GAP_S) -> None:
        self.name, self.func, self.min_gap = name, func, min_gap
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._last_start = float("-inf")
        self.runs = 0  # how many times the stage ran (tests and logs)

    def run(self) -> None:
        """Run the stage now (a tick or a wake-up); if it is running already, have it run again when done."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running, self._again = True, False
        try:
            while True:
                # Work committed while the previous run went on is gathered for one more run, not one per commit.
                pause = self._last_start + self.min_gap - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                self._last_start = time.monotonic()
                self.runs += 1
                self.func()
                with self._lock:
                    if not self._again:
                        return
                    self._again = False
        finally:
            with self._lock:
                self._running = False

    @property
    def running(self) -> bool:
        """Whether the stage is running now."""
        with self._lock:
            return self._running

    def nudge(self) -> bool:
        """If the stage is running, have it run once more when done and return True; else False (start it)."""
        with self._lock:
            if self._running:
                self._again = True
            return self._running


class WakeListener:
    """Listens on the database's wake channel in a thread; calls ``on_wake(stage)`` for this schema's stages."""

    def __init__(
        self, engine: Engine, stages: set[str], on_wake: Callable[[str], None], *, reconnect_s: float = RECONNECT_S
    ) -> None:
        self.engine, self.stages, self.on_wake, self.reconnect_s = engine, set(stages), on_wake, reconnect_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self.connected = threading.Event()  # set while LISTEN is in place (tests wait for it)
        self.received: Counter[str] = Counter()  # notifications for this process's stages, by stage

    def start(self) -> WakeListener:
        """Start listening in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="wake-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def backend_pid(self) -> int | None:
        """The listening connection's server process id (tests end it to simulate a lost connection)."""
        conn = self._conn
        return None if conn is None or conn.closed else int(conn.info.backend_pid)

    def _connect(self) -> tuple[Any, str]:
        # A connection of its own, outside the pool: it holds LISTEN for the process's lifetime. It comes from the
        # engine (same URL, options such as the search_path, and connect events) and is then detached from the pool.
        raw = self.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()
        if conn is None:
            raise RuntimeError("the engine gave no driver connection")
        conn.rollback()
        conn.autocommit = True
        schema = str(conn.execute("SELECT current_schema()").fetchone()[0])
        conn.execute(f"LISTEN {CHANNEL}")
        return conn, schema

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, schema = self._connect()
            except Exception as exc:  # the database is down or restarting: the ticks carry on meanwhile
                log.warning(
                    "wake-ups: cannot listen (%s); trying again in %.0f s", type(exc).__name__, self.reconnect_s
                )
                self._stop.wait(self.reconnect_s)
                continue
            self._conn = conn
            self.connected.set()
            # Whatever was notified while we were not listening is lost: run each stage once to catch up.
            for stage in sorted(self.stages):
                self.on_wake(stage)
            try:
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=POLL_S):
                        woken = parse(note.payload)
                        if woken is not None and woken[1] == schema and woken[0] in self.stages:
                            self.received[woken[0]] += 1
                            self.on_wake(woken[0])
                        if self._stop.is_set():
                            break
            except Exception as exc:
                self.connected.clear()
                if not self._stop.is_set():
                    reason = " ".join(str(exc).split())[:200]
                    log.warning("wake-ups: connection lost (%s); the ticks carry on, listening again", reason)
                    self._stop.wait(self.reconnect_s)
            finally:
                self.connected.clear()
                self._conn = None
                # A broken connection may refuse to close; it is gone either way.
                with contextlib.suppress(Exception):
                    conn.close()
