"""Scaling out: worker roles, and one poller per source across processes (a PostgreSQL advisory lock)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from classifier.registry import load_scorer
from escucha.cli import app
from ground.db import make_engine
from ground.settings import Settings
from listeners.lease import lease_key, source_lease
from models.store import get_cursor
from networks.registry import build_listeners, build_senders
from sandbox.server import Sandbox
from tests.support.db import require_pg
from worker.scheduler import ROLES, Worker, run_poll

ROOT = Path(__file__).resolve().parents[2]
INTERVALS = {"x": 3600, "facebook": 3600}


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    require_pg()
    eng = make_engine(pg_url)
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


def worker_for(engine: Engine, sb: Sandbox, **overrides: Any) -> Worker:
    settings = Settings(_env_file=None, **{**sb.settings_overrides(), **overrides})  # type: ignore[call-arg]
    return Worker(engine, listeners=build_listeners(settings), senders=build_senders(settings), scorer=load_scorer())


def jobs_of(engine: Engine, sb: Sandbox, role: str) -> set[str]:
    worker = worker_for(engine, sb)
    scheduler = worker.start(intervals=INTERVALS, stage_seconds=3600, paused=True, role=role)
    try:
        return {j.id for j in scheduler.get_jobs()}
    finally:
        worker.stop()


def test_each_role_schedules_only_its_own_jobs(sqlite_url: str, sandbox: Sandbox) -> None:
    engine = make_engine(sqlite_url)
    SQLModel.metadata.create_all(engine)
    try:
        polls = {f"poll:{x.network}:{x.source}" for x in worker_for(engine, sandbox).listeners}
        assert len(polls) >= 3
        assert jobs_of(engine, sandbox, "classifier") == {"score", "refit"}
        assert jobs_of(engine, sandbox, "responder") == {"assign", "care", "send", "notify"}
        assert jobs_of(engine, sandbox, "listeners") == polls
        assert jobs_of(engine, sandbox, "all") == polls | {"score", "assign", "care", "send", "notify", "refit"}
        with pytest.raises(ValueError, match="unknown worker role"):
            jobs_of(engine, sandbox, "scorer")
    finally:
        engine.dispose()


def test_a_non_listener_role_leaves_the_stored_poll_jobs_alone(pg_engine: Engine, sandbox: Sandbox) -> None:
    # A listeners process stores its poll jobs; a classifier process on the same database must not drop them.
    listeners = worker_for(pg_engine, sandbox)
    listeners.start(intervals=INTERVALS, stage_seconds=3600, persistent=True, paused=True, role="listeners")
    listeners.stop()
    classifier = worker_for(pg_engine, sandbox)
    scheduler = classifier.start(intervals=INTERVALS, stage_seconds=3600, persistent=True, paused=True,
                                 role="classifier")  # fmt: skip
    try:
        assert {j.id for j in scheduler.get_jobs()} == {"score", "refit"}
    finally:
        classifier.stop()
    again = worker_for(pg_engine, sandbox)
    scheduler = again.start(intervals=INTERVALS, stage_seconds=3600, persistent=True, paused=True, role="listeners")
    try:
        stored = {j.id for j in scheduler.get_jobs(jobstore="default")}
        assert stored == {f"poll:{x.network}:{x.source}" for x in again.listeners}
    finally:
        again.stop()


def test_the_lease_key_is_a_stable_signed_bigint() -> None:
    key = lease_key("x", "mentions")
    assert key == lease_key("x", "mentions") != lease_key("x", "search")
    assert -(2**63) <= key < 2**63
    assert lease_key("facebook", "feed") != lease_key("x", "feed")


def test_the_lease_is_always_granted_on_sqlite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with source_lease(engine, "x", "mentions") as first, source_lease(engine, "x", "mentions") as second:
            assert first is True and second is True
    finally:
        engine.dispose()


def test_the_lease_is_exclusive_across_connections_and_released_after_the_poll(pg_url: str) -> None:
    require_pg()
    source = f"lease-{uuid.uuid4().hex}"
    one, two = make_engine(pg_url), make_engine(pg_url)
    try:
        with source_lease(one, "x", source) as held:
            assert held is True
            with source_lease(two, "x", source) as other:
                assert other is False
            # Another source is not blocked by this one.
            with source_lease(two, "x", f"{source}-b") as unrelated:
                assert unrelated is True
        # Released when the poll ends, even though the connection went back to the pool.
        with source_lease(two, "x", source) as after:
            assert after is True
        with source_lease(one, "x", source) as again:
            assert again is True
    finally:
        one.dispose()
        two.dispose()


HOLDER = """
import sys, time
from ground.db import make_engine
from listeners.lease import source_lease
with source_lease(make_engine(sys.argv[1]), "x", sys.argv[2]) as held:
    print("held" if held else "refused", flush=True)
    time.sleep(120)
"""


def test_a_dead_holder_releases_the_lease_and_another_takes_over(pg_url: str) -> None:
    require_pg()
    source = f"lease-{uuid.uuid4().hex}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, pg_url, source], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    engine = make_engine(pg_url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with source_lease(engine, "x", source) as held:
            assert held is False
        holder.send_signal(signal.SIGKILL)  # dies mid-poll: no unlock, its connection just goes away
        holder.wait(timeout=30)
        deadline = time.monotonic() + 30
        taken = False
        while not taken and time.monotonic() < deadline:
            with source_lease(engine, "x", source) as taken:
                pass
            time.sleep(0.05)
        assert taken, "the lease of a killed holder was never released"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
        engine.dispose()


def test_the_poll_job_skips_a_source_another_process_is_polling(
    pg_url: str, pg_engine: Engine, sandbox: Sandbox
) -> None:
    worker = worker_for(pg_engine, sandbox, facebook_enabled=False, x_dms_enabled=False, x_search_enabled=False)
    assert [(x.network, x.source) for x in worker.listeners] == [("x", "mentions")]
    worker.start(intervals=INTERVALS, stage_seconds=3600, paused=True, role="listeners")
    other = make_engine(pg_url)
    try:
        with source_lease(other, "x", "mentions") as held:
            assert held is True
            run_poll("x", "mentions")
            with Session(pg_engine) as session:
                assert get_cursor(session, network="x", source="mentions").last_success_at is None
        run_poll("x", "mentions")
        with Session(pg_engine) as session:
            assert get_cursor(session, network="x", source="mentions").last_success_at is not None
    finally:
        worker.stop()
        other.dispose()


def test_worker_help_lists_the_roles() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "--role" in result.output
    for role in ROLES:
        assert role in result.output


def test_worker_refuses_an_unknown_role() -> None:
    result = CliRunner().invoke(app, ["worker", "--role", "scorer"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 2
    assert "expected one of listeners, classifier, responder, all" in result.output
