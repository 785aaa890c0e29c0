"""`escucha bench conversation` on a small PostgreSQL database: every page it times renders, and it reports each."""

from __future__ import annotations

from benches.conversation import MEASUREMENTS, bench_conversation
from tests.support.db import PG_URL, require_pg


def test_bench_conversation_times_the_queue_the_conversation_and_the_customer() -> None:
    require_pg()
    report = bench_conversation(database_url=PG_URL, posts=2_000, customers=300, runs=1)
    assert report["backend"] == "postgresql" and report["posts"] == 2_000 and report["customers"] == 300
    assert set(MEASUREMENTS) == {"queue_render", "conversation_render", "customer_render"}
    for name in MEASUREMENTS:
        assert 0 < report[f"{name}_s"] <= report[f"{name}_max_s"]
    assert report["met"] == all(report[f"{name}_s"] < 1.0 for name in MEASUREMENTS)
