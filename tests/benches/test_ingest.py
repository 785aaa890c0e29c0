"""`escucha bench ingest` runs end to end and reports its figures (the figures themselves are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benches.ingest import bench_ingest
from tests.support.db import PG_URL, require_pg

pytestmark = pytest.mark.slow


def test_bench_ingests_every_seeded_mention_into_a_temporary_sqlite() -> None:
    out = subprocess.run([sys.executable, "-m", "escucha.cli", "bench", "ingest", "--json", "--n", "250",
                          "--page-size", "50"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["n"] == report["ingested"] == report["stored"] == 250
    assert report["database"] == "sqlite" and report["requests"] == 5
    assert report["posts_per_s"] > 0 and report["peak_rss_mb"] > 0
    assert set(report["rss_mb"]) == {"start", "middle", "end"}


def test_bench_on_postgresql_uses_a_throwaway_schema() -> None:
    require_pg()
    report = bench_ingest(120, database_url=PG_URL, page_size=20)
    assert report["database"] == "postgresql" and report["stored"] == report["ingested"] == 120
