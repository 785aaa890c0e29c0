"""The two indexes of migration 0004 are the ones the hot statements use, on a migrated PostgreSQL schema."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlmodel import Session, col

from benches.explain import capture, explain, migrated_schema, seed
from models.store import _link_parents
from models.tables import Post
from responder.sla_sweep import _in_flight
from tests.support.db import PG_URL, require_pg


@pytest.mark.postgres
def test_thread_linking_and_in_flight_checks_probe_their_indexes() -> None:
    require_pg()
    with migrated_schema(PG_URL) as engine:
        seed(engine, posts=20_000)
        with Session(engine) as session:
            newest = session.execute(
                select(col(Post.id), col(Post.external_id)).order_by(col(Post.id).desc()).limit(2)
            ).all()
            open_ids = list(session.execute(
                select(col(Post.id)).where(col(Post.status) == "assigned").limit(200)).scalars())  # fmt: skip
        with capture(engine) as seen, Session(engine) as session:
            _link_parents(session, [int(i) for i, _ in newest], [str(e) for _, e in newest])
            _in_flight(session, open_ids)
            session.rollback()
        updates = [(sql, params) for _, sql, params in seen if sql.lstrip().upper().startswith("UPDATE POST")]
        assert len(updates) == 2, "thread linking is one statement for the new posts, one for their replies"
        plans = [explain(engine, sql, params) for sql, params in updates]
        # The replies that point at the new posts are found by value in the partial index, not by reading post.
        assert "ix_post_unlinked_reply" in plans[1]["indexes"] and "post" not in plans[1]["seq_scans"], plans[1]
        assert "post" not in plans[0]["seq_scans"], plans[0]
        (sql, params) = next((s, p) for _, s, p in seen if "FROM reply" in s and "state IN" in s)
        plan = explain(engine, sql, params)
        assert "ix_reply_answer_in_flight" in plan["indexes"] and "reply" not in plan["seq_scans"], plan
        with engine.connect() as conn:
            names = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"))
                        .scalars())  # fmt: skip
        assert {"ix_post_unlinked_reply", "ix_reply_answer_in_flight"} <= names
