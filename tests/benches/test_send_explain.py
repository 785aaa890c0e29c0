"""`bench send` sends each approved reply once; `bench explain` plans the stages' queries on a migrated schema."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ground.db import make_engine
from tests.support.db import PG_URL, require_pg


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_send_sends_every_reply_once(backend: str) -> None:
    from benches.send import bench_send

    if backend == "postgresql":
        require_pg()
    report = bench_send(24, database_url=None if backend == "sqlite" else PG_URL, limit=10)
    assert report["ingested"] == 24 and report["sent"] == 24
    assert sum(report["sent_by_network"].values()) == 24
    assert report["replies_by_state"].get("sent") == 24 and report["sends_per_s"] > 0
    with pytest.raises(ValueError, match="positive"):
        bench_send(0)


def test_bench_explain_plans_the_hot_queries_and_drops_its_schema() -> None:
    from benches.explain import bench_explain

    require_pg()
    admin = make_engine(PG_URL)
    with admin.connect() as conn:
        before = set(conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'explain_%'")).scalars())
    report = bench_explain(PG_URL, posts=300)
    assert report["rows"]["post"] >= 300
    origins = {s["origin"].split(":")[0] for s in report["statements"]}
    assert any(o.startswith("responder/assign") for o in origins), origins
    assert any(o.startswith("classifier/pipeline") for o in origins), origins
    with admin.connect() as conn:
        after = set(conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'explain_%'")).scalars())
    admin.dispose()
    assert after == before  # the throw-away schema is gone
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        bench_explain("sqlite:///x.db", posts=1)
