"""PostgreSQL for the tests: whether it is reachable, loud skips (failures under CI), throw-away schemas."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from ground.db import make_engine

PG_URL = os.environ.get("ESCUCHA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"

_pg_problem: str | None = None
_pg_checked = False


def pg_unavailable() -> str | None:
    """Return why PostgreSQL cannot be used, or None when it can."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        try:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("select 1")
        except Exception as exc:
            _pg_problem = f"PostgreSQL at {PG_URL} is unreachable: {exc}"
    return _pg_problem


def require_pg() -> None:
    """Skip loudly without PostgreSQL, except under CI where its absence is a failure."""
    problem = pg_unavailable()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {problem}", pytrace=False)
    pytest.skip(f"!!! SKIPPED: {problem} (these tests must run in CI)")


@contextlib.contextmanager
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
