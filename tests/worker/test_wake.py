"""Stages woken by new work on the real PostgreSQL: NOTIFY after the commit, LISTEN in the worker, ticks as the net."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from classifier.lexicon_scorer import LexiconScorer
from ground.db import make_engine
from ground.settings import Settings
from models.store import save_posts
from models.tables import UNAPPROVED, Assignment, Post, PostKind, PostStatus, Reply, Score, Staff, utcnow
from networks.registry import build_listeners, build_senders
from responder.actions import approve_reply
from sandbox.server import Sandbox
from tests.support.db import require_pg
from tests.support.incoming import incoming
from worker.scheduler import Worker
from worker.wake import StageRunner

# The stages' ticks in these tests: anything done well within it was done by a wake-up.
TICK_S = 30.0
COMPLAINT = "mi pedido no llega y nadie responde, quiero un reembolso"


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    require_pg()
    eng = make_engine(pg_url)
    SQLModel.metadata.create_all(eng)
    with Session(eng) as session:
        session.add_all(
            Staff(
                name=f"Agent {i}",
                email=f"a{i}@wake.test",
                languages="es,en",
                channels="public,dm",
                capacity=500,
                senior=True,
            )
            for i in range(4)
        )
        session.commit()
    yield eng
    eng.dispose()


def start_worker(engine: Engine, *, tick: float = TICK_S) -> Worker:
    """A classifier+responder worker woken by notifications, its ticks ``tick`` apart; idle once started."""
    worker = Worker(engine, listeners=[], senders={}, scorer=LexiconScorer())
    worker.start(intervals={}, stage_seconds=tick, role="classifier+responder", wake=True, safety_seconds=tick)
    assert worker.wake_listener is not None and worker.wake_listener.connected.wait(15)
    wait_until(lambda: all(r.runs >= 1 and not r.running for r in worker.runners.values()), 15)
    return worker


def wait_until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


def store(engine: Engine, *ids: str) -> None:
    """Store posts the way listeners and the webhook receiver do (``save_posts``, which notifies)."""
    with Session(engine) as session:
        save_posts(session, [incoming(i, COMPLAINT, author=f"au{i}") for i in ids])
        session.commit()


def status_of(engine: Engine, external_id: str) -> str | None:
    with Session(engine) as session:
        return session.execute(select(col(Post.status)).where(col(Post.external_id) == external_id)).scalar()


def test_a_stored_post_is_scored_and_assigned_within_a_fraction_of_the_tick(pg_engine: Engine) -> None:
    worker = start_worker(pg_engine)
    try:
        store(pg_engine, "w1")
        took = wait_until(lambda: status_of(pg_engine, "w1") == PostStatus.ASSIGNED, TICK_S / 3)
        assert took < TICK_S / 10, took
        assert worker.wake_listener is not None
        assert {"score", "assign"} <= set(worker.wake_listener.received)  # stored, then scored
    finally:
        worker.stop()


def test_notifications_of_another_schema_do_not_wake_this_worker(pg_engine: Engine) -> None:
    worker = start_worker(pg_engine)
    try:
        assert worker.wake_listener is not None
        before = worker.wake_listener.received.total()
        with pg_engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('escucha_wake', 'score some_other_schema')"))
            conn.execute(text("SELECT pg_notify('escucha_wake', 'not-a-stage ' || current_schema())"))
            conn.execute(text("SELECT pg_notify('escucha_wake', 'score ' || current_schema())"))
        wait_until(lambda: worker.wake_listener is not None and worker.wake_listener.received.total() > before, 10)
        time.sleep(0.3)
        assert worker.wake_listener.received.total() == before + 1
    finally:
        worker.stop()


def test_a_post_stored_without_a_notification_is_caught_by_the_tick(pg_engine: Engine) -> None:
    tick = 2.0
    worker = start_worker(pg_engine, tick=tick)
    try:
        assert worker.wake_listener is not None
        before = worker.wake_listener.received["score"]
        # Written without save_posts: no NOTIFY, as when a notification is lost.
        with Session(pg_engine) as session:
            session.add(
                Post(network="x", external_id="quiet", kind=PostKind.MENTION, source="mentions", text=COMPLAINT,
                     created_at=utcnow() - timedelta(seconds=1), status=PostStatus.NEW)
            )  # fmt: skip
            session.commit()
        wait_until(lambda: status_of(pg_engine, "quiet") == PostStatus.ASSIGNED, 3 * tick + 5)
        assert worker.wake_listener.received["score"] == before  # nothing notified the classifier: its tick did it
    finally:
        worker.stop()


def test_a_lost_listening_connection_is_replaced_and_what_came_meanwhile_is_caught(pg_engine: Engine) -> None:
    worker = start_worker(pg_engine)
    try:
        listener = worker.wake_listener
        assert listener is not None
        listener.reconnect_s = 3.0  # a window in which nobody listens
        pid = listener.backend_pid()
        assert pid is not None
        with pg_engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # Stored while nobody listens: its notification reaches no one.
        wait_until(lambda: not listener.connected.is_set(), 10)
        store(pg_engine, "during")
        # Caught when the listener is back (every stage runs once on reconnecting), long before the tick.
        wait_until(lambda: status_of(pg_engine, "during") == PostStatus.ASSIGNED, TICK_S / 3)
        assert listener.connected.is_set()
        assert listener.backend_pid() not in (None, pid)
        store(pg_engine, "after")
        assert wait_until(lambda: status_of(pg_engine, "after") == PostStatus.ASSIGNED, TICK_S / 3) < TICK_S / 10
    finally:
        worker.stop()


def test_two_woken_workers_never_claim_the_same_post(pg_url: str, pg_engine: Engine) -> None:
    other = make_engine(pg_url)
    workers = [start_worker(pg_engine), start_worker(other)]
    try:
        ids = [f"m{i}" for i in range(200)]
        for i in range(0, len(ids), 5):
            store(pg_engine if i % 2 else other, *ids[i : i + 5])

        def assigned() -> int:
            with Session(pg_engine) as session:
                query = select(func.count()).where(col(Post.status) == PostStatus.ASSIGNED)
                return int(session.execute(query).scalar_one())

        wait_until(lambda: assigned() == len(ids), TICK_S / 2)
        with Session(pg_engine) as session:
            scores = session.execute(select(func.count()).select_from(Score)).scalar_one()
            per_post = session.execute(
                select(col(Assignment.post_id), func.count()).group_by(col(Assignment.post_id))
            ).all()
        assert scores == len(ids)
        assert len(per_post) == len(ids) and all(n == 1 for _, n in per_post)
        # Both processes were woken and ran stages; the claims kept them apart.
        assert all(w.wake_listener is not None and w.wake_listener.received.total() > 0 for w in workers)
        assert all(w.runners["score"].runs > 1 for w in workers)
    finally:
        for w in workers:
            w.stop()
        other.dispose()


def test_a_runner_asked_while_running_runs_once_more_and_never_twice_at_once() -> None:
    active, seen, calls = [0], [0], []

    def stage() -> None:
        active[0] += 1
        seen[0] = max(seen[0], active[0])
        calls.append(time.monotonic())
        time.sleep(0.1)
        active[0] -= 1

    runner = StageRunner("test", stage, min_gap=0.2)
    first = threading.Thread(target=runner.run)
    first.start()
    wait_until(lambda: len(calls) == 1, 5)
    for _ in range(5):  # five wake-ups during one run: one more run, not five
        assert runner.nudge() is True
        runner.run()
    first.join(5)
    assert len(calls) == 2 and seen[0] == 1
    assert calls[1] - calls[0] >= 0.2  # the gap gathers what came meanwhile into one run
    assert not runner.running and runner.nudge() is False


def test_an_approval_wakes_the_outbox_and_the_reply_goes_out_within_a_fraction_of_the_tick(
    pg_engine: Engine, sandbox: Sandbox
) -> None:
    settings = Settings(_env_file=None, ack_dms=False, **sandbox.settings_overrides())  # type: ignore[call-arg]
    sandbox.add_mention("mi pedido no llega, ¿me ayudan?", author="espera_respuesta")
    worker = Worker(pg_engine, listeners=build_listeners(settings), senders=build_senders(settings),
                    scorer=LexiconScorer())  # fmt: skip
    worker.start(intervals={"x": 3600, "facebook": 3600}, stage_seconds=TICK_S, wake=True, safety_seconds=TICK_S)
    try:
        # Polled at start, then scored and assigned by wake-ups: a suggested answer waits for approval.
        def pending() -> int | None:
            with Session(pg_engine) as session:
                query = select(col(Reply.id)).where(col(Reply.state).in_(UNAPPROVED))
                return session.execute(query).scalars().first()

        wait_until(lambda: pending() is not None, TICK_S / 2)
        reply_id = pending()
        assert reply_id is not None
        with Session(pg_engine) as session:
            manager = Staff(name="Lucía", email="lucia@wake.test", role="manager", languages="es,en")
            session.add(manager)
            session.commit()
            approve_reply(session, reply_id=reply_id, staff=manager)
        took = wait_until(lambda: len(sandbox.sent) == 1, TICK_S / 3)
        assert took < TICK_S / 10, took
        assert worker.wake_listener is not None and worker.wake_listener.received["send"] >= 1
    finally:
        worker.stop()


def test_a_transaction_asks_each_stage_once_and_the_next_transaction_asks_again(pg_engine: Engine) -> None:
    from sqlalchemy import event

    from ground.wake import wake

    notifies: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "pg_notify" in statement:
            notifies.append(statement)

    event.listen(pg_engine, "before_cursor_execute", count)
    try:
        with Session(pg_engine) as session:
            for _ in range(256):  # a scoring batch: every post that needs an answer asks for the assignment sweep
                wake(session, "assign")
            wake(session, "send")
            assert len(notifies) == 2
            session.commit()
            wake(session, "assign")  # a new transaction: its commit must wake the sweep again
            assert len(notifies) == 3
            session.rollback()
            wake(session, "assign")  # the rolled-back notification is gone: this one is sent
            assert len(notifies) == 4
            session.commit()
    finally:
        event.remove(pg_engine, "before_cursor_execute", count)
