"""`escucha bench assign` on a small backlog: it assigns everything, on SQLite and PostgreSQL (no timing asserts)."""

from __future__ import annotations

import pytest

from benches.assign import bench_assign
from tests.support.db import PG_URL, require_pg


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_assign_reports_every_post_assigned_once(backend: str) -> None:
    url = None
    if backend == "postgresql":
        require_pg()
        url = PG_URL
    report = bench_assign(300, 50, database_url=url, batch=50)
    assert report["assigned"] == report["assignment_rows"] == report["drafts"] == 300
    assert report["held"] == 0 and report["max_load"] <= report["capacity_each"]
    # A small team cannot cover every language, channel and seniority: the rest waits, visibly, never dropped.
    small = bench_assign(300, 7, database_url=url, batch=50)
    assert small["assigned"] + small["held"] == 300 and small["assigned"] == small["assignment_rows"]
    assert report["assignments_per_s"] > 0 and report["backend"] == backend
