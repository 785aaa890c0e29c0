"""SIGKILL the worker in the middle of a paged fetch, restart it: every post served is stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel, col

from demo.run import settings_env
from ground.db import make_engine
from ground.settings import Settings
from models.schema import alembic_config
from models.tables import Post, SourceCursor
from sandbox.server import Sandbox

pytestmark = pytest.mark.slow

TOTAL = 120  # 12 pages of 10: a run spans several polls (3 pages each) and the kill lands inside one


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "escucha.cli", "worker"], env=env, stdout=out, stderr=out)


def test_sigkill_mid_fetch_then_restart_stores_every_served_post_once(
    db_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    # The schema as the models describe it, stamped so the worker's own `migrate` has nothing to do.
    SQLModel.metadata.create_all(engine)
    command.stamp(alembic_config(engine), "head")
    ids = [sandbox.add_mention(f"queja número {i}", author=f"cliente{i % 7}") for i in range(TOTAL)]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        x_page_size=10,
        x_max_pages=3,
        x_poll_seconds=0.2,
        x_dms_enabled=False,
        x_search_enabled=False,
        facebook_enabled=False,
        fetch_retries=0,
        **sandbox.settings_overrides(),
    )
    env = {**os.environ, **settings_env(settings), "ESCUCHA_X_SEARCH_QUERY": ""}
    # Every mentions page takes a while, so the kill lands between two pages of one run.
    sandbox.slow_next(10_000, seconds=0.25, path_contains="/mentions")

    def stored() -> int:
        with Session(engine) as session:
            return int(session.execute(select(func.count()).select_from(Post)).scalar_one())

    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: stored() >= 20, 60, "the first pages")
        served_before_kill = len(sandbox.served_ids)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    at_kill = stored()
    assert 0 < at_kill < TOTAL, "the kill must land in the middle of the fetch"
    assert served_before_kill < TOTAL
    with Session(engine) as session:
        cursor = session.execute(select(SourceCursor).where(col(SourceCursor.source) == "mentions")).scalar_one()
        assert cursor.paging.get("token"), "an unfinished run keeps its resume point"

    # More mentions arrive while the worker is down; they must not fall into a gap either.
    late = [sandbox.add_mention(f"sigo esperando {i}") for i in range(5)]
    sandbox.clear_faults()
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: stored() >= TOTAL + len(late), 90, "the restarted worker to catch up")
        wait_for(lambda: not _paging(engine), 30, "the run to finish")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()

    with Session(engine) as session:
        rows = session.execute(select(Post.external_id).where(col(Post.network) == "x")).scalars().all()
    served = set(sandbox.served_ids)
    assert served == set(ids) | set(late)
    assert sorted(rows) == sorted(served), "every post the sandbox served is stored exactly once"
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
    engine.dispose()


def _paging(engine: object) -> bool:
    with Session(engine) as session:  # type: ignore[arg-type]
        cursor = session.execute(select(SourceCursor).where(col(SourceCursor.source) == "mentions")).scalar_one()
        return bool(cursor.paging)
