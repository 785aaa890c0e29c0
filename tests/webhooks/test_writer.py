"""Deliveries stored in shared transactions (webhooks/writer.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
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


def test_concurrent_requests_are_each_settled_once_in_fewer_transactions(engine: Engine) -> None:
    writer = DeliveryWriter(engine)
    n = 60

    async def burst() -> list[StoredBatch | None]:
        deliveries = [Delivery("x", f"d{i}", T, [incoming(str(i)), incoming(str(i + 1))]) for i in range(n)]
        # The same delivery again at the end: one of the two is refused, whichever group it fell in.
        return await asyncio.gather(*(writer.store(d) for d in [*deliveries, deliveries[0]]))

    results = asyncio.run(burst())
    assert sum(r is None for r in results) == 1
    assert sum(r.inserted for r in results if r is not None) == n + 1  # posts 0..n, each counted once
    assert count(engine, Post) == n + 1 and count(engine, WebhookDelivery) == n
    # The first delivery may be stored alone; the others queue while it commits and share transactions.
    assert 1 <= writer.groups < n // 2


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
