"""Shared fixtures: a fresh database per test on SQLite and on the real PostgreSQL, and the loopback sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import models.tables  # noqa: F401  (registers the tables)
from ground.db import make_engine
from sandbox.server import Sandbox
from tests.support import db as pgdb
from tests.support.db import pg_schema_url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly at the end of the run when the PostgreSQL tests were skipped."""
    if pgdb._pg_problem:
        terminalreporter.write_line(f"WARNING: PostgreSQL tests were skipped: {pgdb._pg_problem}", red=True, bold=True)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A file-backed SQLite URL (shared across threads and subprocesses)."""
    return f"sqlite:///{tmp_path / 'escucha-test.db'}"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started loopback sandbox (X and Graph API look-alikes), stopped after the test."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema made for this test alone."""
    with pg_schema_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend, one test at a time."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine with the full schema created, on each backend."""
    eng = make_engine(db_url)
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the per-test database."""
    with Session(engine, expire_on_commit=False) as s:
        yield s
