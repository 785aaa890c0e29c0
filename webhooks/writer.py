"""Verified deliveries stored in shared transactions: one writer thread commits every delivery that came meanwhile.

Why: with a transaction per delivery, each with its own upserts of authors, conversations and threads, the receiver
took half a core at 50 deliveries/s on a 2-core machine, and its forty request threads waited on each other's row
locks in PostgreSQL (docs/capacity.md, "A 2-core AMD EPYC without AVX-512 again"). Now the deliveries that
arrive while one group commits form the next group: one log INSERT, one ``save_posts``, one commit. An idle receiver
stores a lone delivery at once. Every delivery is still answered only after the commit that holds it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ground.db import session_scope
from models.store import Delivery, StoredBatch, record_deliveries

log = logging.getLogger("escucha.webhooks")

# Deliveries in one transaction at most: a group stays a fraction of a second of work under any backlog.
MAX_GROUP = 64
# One writer serves every request, so one transaction stuck behind a row lock would hold them all: on PostgreSQL a
# group waits this long for a lock, then fails like an outage (503, redelivered).
LOCK_TIMEOUT = "5s"
# A request waits this long for its group's commit, then is answered 503 (if the commit comes later after all, the
# redelivery is answered 409: stored once either way).
STORE_TIMEOUT_S = 30.0

Settle = Callable[[StoredBatch | None, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class _Pending:
    delivery: Delivery
    settle: Settle


Result = asyncio.Future[StoredBatch | None]


def _resolve(future: Result, result: StoredBatch | None, error: BaseException | None) -> None:
    if future.done():  # the client went away and its request was cancelled: the commit stands all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DeliveryWriter:
    """Stores deliveries for the receiver's requests, in groups, on one thread of its own."""

    def __init__(self, engine: Engine, *, max_group: int = MAX_GROUP, timeout_s: float = STORE_TIMEOUT_S) -> None:
        self.engine = engine
        self.max_group = max_group
        self.timeout_s = timeout_s
        self.groups = 0  # transactions committed or tried (the tests and the bench read it)
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def store(self, delivery: Delivery) -> StoredBatch | None:
        """Store ``delivery`` with whatever else is waiting; None when it was stored before.

        Database errors are raised, and TimeoutError when the commit takes longer than ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        future: Result = loop.create_future()

        def settle(result: StoredBatch | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_resolve, future, result, error)

        self.submit(delivery, settle)
        # Shielded: a request that gives up leaves its delivery in the group, whose commit stands.
        return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)

    def submit(self, delivery: Delivery, settle: Settle) -> None:
        """Queue ``delivery``; ``settle(result, error)`` is called from the writer thread once it is committed."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                # A daemon: a receiver stopped mid-group commits nothing, answers nothing, and the network redelivers.
                self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
                self._thread.start()
        self._queue.put(_Pending(delivery, settle))

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self.max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.write(group)
            except BaseException as exc:  # a request left unanswered would wait until its timeout
                log.exception("webhook writer: a group of %d failed outside the store", len(group))
                for pending in group:
                    _settle(pending, None, exc)

    def write(self, group: list[_Pending]) -> None:
        """Commit ``group`` in one transaction and settle each; a failure not the database's is retried one by one."""
        try:
            results = self._commit([p.delivery for p in group])
        except Exception as exc:
            if len(group) > 1 and not _unavailable(exc):
                # One delivery the store cannot take must not fail the others that shared its transaction.
                log.warning("webhook group of %d failed (%s): storing each alone", len(group), type(exc).__name__)
                for pending in group:
                    self.write([pending])
                return
            # The database is unreachable or busy (every delivery is answered 503 and redelivered), or the store
            # refused this one delivery.
            for pending in group:
                _settle(pending, None, exc)
            return
        for pending, result in zip(group, results, strict=True):
            _settle(pending, result, None)

    def _commit(self, deliveries: list[Delivery]) -> list[StoredBatch | None]:
        self.groups += 1
        with session_scope(self.engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            return record_deliveries(session, deliveries)


def _unavailable(exc: Exception) -> bool:
    """Whether the database could not be used at all (down, unreachable, a lock not granted in time)."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
    )


def _settle(pending: _Pending, result: StoredBatch | None, error: BaseException | None) -> None:
    try:
        pending.settle(result, error)
    except Exception:
        # The request's event loop is gone (the receiver is stopping): its client gets no answer and redelivers.
        log.warning("webhook writer: a delivery could not be answered", exc_info=True)
