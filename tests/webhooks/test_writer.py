"""Deliveries stored in shared transactions (webhooks/writer.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from models.store import Delivery, StoredBatch
from models.tables import Post, WebhookDelivery
from tests.support.incoming import T, incoming
from webhooks.writer import DeliveryWriter, _Pending


class Outcomes:
    """What each delivery was settled with, by delivery id."""

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[StoredBatch | None, BaseException | None]] = {}
        self.done = threading.Event()
        self.expected = 0
        self._lock = threading.Lock()

    def pending(self, delivery: Delivery) -> _Pending:
        self.expected += 1

        def settle(result: StoredBatch | None, error: BaseException | None) -> None:
            with self._lock:
                assert delivery.delivery_id not in self.by_id, "settled twice"
                self.by_id[delivery.delivery_id] = (result, error)
                if len(self.by_id) == self.expected:
                    self.done.set()

        return _Pending(delivery, settle)


def count(engine: Engine, table: Any) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_group_is_one_transaction_and_each_delivery_gets_its_own_answer(engine: Engine) -> None:
    writer = DeliveryWriter(engine)
    out = Outcomes()
    group = [
        out.pending(Delivery("x", "a", T, [incoming("1"), incoming("2")])),
        out.pending(Delivery("x", "b", T, [incoming("2"), incoming("3")])),
    ]
    writer.write(group)
    assert writer.groups == 1
    a, b = out.by_id["a"], out.by_id["b"]
    assert a[1] is None and a[0] is not None and a[0].inserted == 2
    assert b[1] is None and b[0] is not None and (b[0].inserted, b[0].duplicates) == (1, 1)
    assert count(engine, Post) == 3 and count(engine, WebhookDelivery) == 2


def test_a_delivery_the_store_cannot_take_fails_alone_and_the_rest_of_its_group_is_stored(engine: Engine) -> None:
    writer = DeliveryWriter(engine)
    out = Outcomes()
    poison = Delivery("x", "bad", T, [object()])  # not a post: save_posts raises AttributeError
    writer.write(
        [
            out.pending(Delivery("x", "a", T, [incoming("1")])),
            out.pending(poison),
            out.pending(Delivery("x", "b", T, [incoming("2")])),
        ]
    )
    assert writer.groups == 4  # the group, rolled back, then each delivery alone
    assert isinstance(out.by_id["bad"][1], AttributeError)
    assert out.by_id["a"][0] is not None and out.by_id["a"][0].inserted == 1
    assert out.by_id["b"][0] is not None and out.by_id["b"][0].inserted == 1
    assert count(engine, Post) == 2
    with Session(engine) as s:  # the poison's log row went with its rollback: a redelivery is not refused
        assert sorted(s.execute(select(WebhookDelivery.delivery_id)).scalars()) == ["a", "b"]


def test_an_unreachable_database_fails_the_whole_group_at_once() -> None:
    # A port nothing listens on: every delivery is answered with the error (503 upstream), none is retried alone.
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/test", connect_args={"connect_timeout": 2})
    writer = DeliveryWriter(dead)
    out = Outcomes()
    writer.write([out.pending(Delivery("x", d, T, [incoming(d)])) for d in ("a", "b", "c")])
    assert writer.groups == 1
    assert all(isinstance(error, OperationalError) and result is None for result, error in out.by_id.values())


def test_deliveries_that_arrive_during_a_commit_share_the_next_transaction(engine: Engine) -> None:
    writer = DeliveryWriter(engine)
    real, started, release = writer._commit, threading.Event(), threading.Event()

    def held_first(deliveries: list[Delivery]) -> list[StoredBatch | None]:
        if writer.groups == 0:  # the first group's commit waits while the others queue
            started.set()
            assert release.wait(10)
        return real(deliveries)

    writer._commit = held_first  # type: ignore[method-assign]
    n = 20

    async def burst() -> list[StoredBatch | None]:
        first = asyncio.ensure_future(writer.store(Delivery("x", "d0", T, [incoming("0")])))
        assert await asyncio.to_thread(started.wait, 10)
        deliveries = [Delivery("x", f"d{i}", T, [incoming(str(i)), incoming(str(i + 1))]) for i in range(1, n)]
        # d1 again at the end: the second copy is refused although it shares d1's transaction.
        rest = [asyncio.ensure_future(writer.store(d)) for d in [*deliveries, deliveries[0]]]
        await asyncio.sleep(0.05)  # every request is queued before the first commit ends
        release.set()
        return [await first, *(await asyncio.gather(*rest))]

    results = asyncio.run(burst())
    assert writer.groups == 2
    assert sum(r is None for r in results) == 1 and results[-1] is None
    assert sum(r.inserted for r in results if r is not None) == n + 1  # posts 0..n, each counted once
    assert count(engine, Post) == n + 1 and count(engine, WebhookDelivery) == n


def test_an_answer_that_cannot_be_delivered_does_not_stop_the_writer(engine: Engine) -> None:
    writer = DeliveryWriter(engine)
    out = Outcomes()

    def broken(result: StoredBatch | None, error: BaseException | None) -> None:
        raise RuntimeError("event loop is closed")

    writer.submit(Delivery("x", "gone", T, [incoming("1")]), broken)
    later = out.pending(Delivery("x", "next", T, [incoming("2")]))
    writer.submit(later.delivery, later.settle)
    assert out.done.wait(10)
    result, error = out.by_id["next"]
    assert error is None and result is not None and result.inserted == 1
    assert count(engine, Post) == 2  # the first was committed all the same; a redelivery would get 409


def test_a_request_whose_commit_takes_too_long_gets_a_timeout_and_the_commit_still_stands(engine: Engine) -> None:
    writer = DeliveryWriter(engine, timeout_s=0.2)
    real, release = writer._commit, threading.Event()

    def slow(deliveries: list[Delivery]) -> list[StoredBatch | None]:
        assert release.wait(10)
        return real(deliveries)

    writer._commit = slow  # type: ignore[method-assign]

    async def ask() -> None:
        await writer.store(Delivery("x", "slow", T, [incoming("1")]))

    with pytest.raises(TimeoutError):
        asyncio.run(ask())
    release.set()
    deadline = time.monotonic() + 10
    while count(engine, Post) == 0:
        assert time.monotonic() < deadline, "the shielded commit never happened"
        time.sleep(0.05)
    assert count(engine, WebhookDelivery) == 1


@pytest.mark.parametrize("max_group", [1, 3])
def test_groups_never_exceed_their_bound(engine: Engine, max_group: int) -> None:
    writer = DeliveryWriter(engine, max_group=max_group)
    sizes: list[int] = []
    real = writer._commit

    def spy(deliveries: list[Delivery]) -> list[StoredBatch | None]:
        sizes.append(len(deliveries))
        return real(deliveries)

    writer._commit = spy  # type: ignore[method-assign]

    async def burst() -> list[StoredBatch | None]:
        return await asyncio.gather(*(writer.store(Delivery("x", f"d{i}", T, [incoming(str(i))])) for i in range(10)))

    results = asyncio.run(burst())
    assert all(r is not None and r.inserted == 1 for r in results)
    assert max(sizes) <= max_group and sum(sizes) == 10
