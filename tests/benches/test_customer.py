"""`escucha bench customer` on a small PostgreSQL schema: it seeds, renders the page, reports and drops its schema."""

from __future__ import annotations

from sqlalchemy import text

from benches.customer import bench_customer
from ground.db import make_engine
from tests.support.db import PG_URL, require_pg


def _bench_schemas() -> set[str]:
    engine = make_engine(PG_URL)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_customer_%'")).scalars()
        found = set(names)
    engine.dispose()
    return found


def test_bench_customer_renders_the_busiest_customer_and_cleans_up() -> None:
    require_pg()
    before = _bench_schemas()
    report = bench_customer(PG_URL, posts=2_000, customers=300, runs=2)
    assert report["posts"] == 2_000 and report["customers"] == 300
    # The busiest customer has two identities and at least 1 % of the posts.
    assert report["customer_posts"] >= 20
    assert report["conversations"] > 1 and report["texts_rendered"] >= 20
    assert 0 < report["customer_render_s"] <= report["customer_render_max_s"]
    assert _bench_schemas() == before
