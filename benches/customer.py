"""`escucha bench customer`: the customer page's server time with 100,000 posts and 20,000 customers on PostgreSQL.

The database is a throw-away schema migrated by Alembic (what production runs). One in ten customers writes from
two identities (X and Facebook), every post is scored, one in three has a sent answer and a rating. The page is
rendered through Streamlit's AppTest, as the desk would, for the busiest customer.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session

from ground.db import get_engine
from ground.settings import get_settings
from models.schema import scratch_database
from models.tables import Author, Customer, Post, PostStatus, Reply, Satisfaction, Score, Staff, utcnow
from review_app.customer_data import load_customer
from review_app.launch import APP

CHUNK = 10_000


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def seed_customers(session: Session, *, posts: int, customers: int) -> tuple[int, int]:
    """Insert ``customers`` people (a tenth with a second, Facebook identity) and ``posts`` posts spread over
    them, the first customer the busiest; return (the manager's id, the busiest customer's id)."""
    now = utcnow()
    manager = Staff(name="Bench Manager", email="bench-customer@escucha", role="manager")
    session.add(manager)
    session.flush()
    session.execute(insert(Customer), [{"id": c + 1, "created_at": now} for c in range(customers)])
    authors: list[dict[str, Any]] = []
    for c in range(customers):
        name = f"Cliente {c}"
        authors.append({"id": len(authors) + 1, "network": "x", "external_id": f"x{c}", "username": f"cliente_{c}",
                        "display_name": name, "followers_count": c % 900, "verified": False, "updated_at": now,
                        "customer_id": c + 1})  # fmt: skip
        if c % 10 == 0:
            authors.append({"id": len(authors) + 1, "network": "facebook", "external_id": f"f{c}", "username": "",
                            "display_name": name, "followers_count": 0, "verified": False, "updated_at": now,
                            "customer_id": c + 1})  # fmt: skip
    for chunk in _chunks(authors):
        session.execute(insert(Author), chunk)
    # The busiest customer (authors 1 and 2) writes 1 % of everything; the rest is spread evenly.
    busy = max(1, posts // 100)
    rows: list[dict[str, Any]] = []
    for i in range(posts):
        author = 1 + (i % 2) if i < busy else 1 + (i % len(authors))
        network = "x" if authors[author - 1]["network"] == "x" else "facebook"
        kind = "dm" if i % 5 == 0 else ("mention" if network == "x" else "comment")
        rows.append({"id": i + 1, "network": network, "external_id": f"p{i}", "kind": kind, "source": "bench",
                     "author_id": author, "text": f"post {i}: my order #{5000 + i % 977} <b>never</b> arrived",
                     "is_public": kind != "dm", "manual_only": False,
                     "conversation_id": f"dm-{author}" if kind == "dm" else f"t{i // 3}",
                     "created_at": now - timedelta(minutes=i), "ingested_at": now, "needs_response": True,
                     "status": PostStatus.REPLIED if i % 3 == 0 else PostStatus.SCORED,
                     "urgency": i % 101})  # fmt: skip
    for chunk in _chunks(rows):
        session.execute(insert(Post), chunk)
    for chunk in _chunks(
        [{"post_id": i + 1, "sentiment": ("negative", "neutral", "positive")[i % 3], "p_negative": 0.6,
          "p_neutral": 0.3, "p_positive": 0.1, "complaint": 0.7, "urgency": i % 101, "crisis": False,
          "language": "es", "reasons": ["bench"], "model_id": "bench", "scored_at": now} for i in range(posts)]
    ):  # fmt: skip
        session.execute(insert(Score), chunk)
    answered = [i for i in range(posts) if i % 3 == 0]
    for chunk in _chunks(
        [{"post_id": i + 1, "kind": "answer", "state": "sent", "text": f"Sorry about order #{5000 + i % 977}",
          "suggested_text": "", "idempotency_key": f"bench-{i}", "attempts": 1, "created_at": now, "updated_at": now,
          "sent_at": now - timedelta(minutes=i) + timedelta(seconds=90)} for i in answered]
    ):  # fmt: skip
        session.execute(insert(Reply), chunk)
    for chunk in _chunks(
        [{"post_id": i + 1, "asked_at": now, "score": 1 + i % 5, "answered_at": now} for i in answered[::2]]
    ):
        session.execute(insert(Satisfaction), chunk)
    if session.get_bind().dialect.name == "postgresql":
        # Ids were given by hand: each sequence must go on after them (fixed table names, no input).
        for table in ("customer", "author", "post"):
            sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"  # noqa: S608
            session.execute(text(sql))
        session.execute(text("ANALYZE"))
    session.commit()
    assert manager.id is not None
    return manager.id, 1


def bench_customer(
    database_url: str, *, posts: int = 100_000, customers: int = 20_000, runs: int = 5
) -> dict[str, Any]:
    """Seed a throw-away PostgreSQL schema and time the customer page's server render for the busiest customer."""
    from streamlit.testing.v1 import AppTest

    saved = os.environ.get("ESCUCHA_DATABASE_URL")
    with scratch_database(database_url, migrations=True, prefix="bench_customer") as engine:
        seed_start = time.perf_counter()
        with Session(engine) as session:
            manager_id, customer_id = seed_customers(session, posts=posts, customers=customers)
        seed_s = time.perf_counter() - seed_start
        with Session(engine) as session:
            start = time.perf_counter()
            page = load_customer(session, customer_id)
            load_s = time.perf_counter() - start
            assert page is not None
        os.environ["ESCUCHA_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
        get_settings.cache_clear()
        get_engine.cache_clear()
        try:
            at = AppTest.from_file(str(APP.parent / "views" / "customer.py"), default_timeout=60)
            at.session_state["staff_id"] = manager_id
            at.session_state["lang"] = "en"
            at.query_params["id"] = str(customer_id)
            at.run()  # the first render imports and warms caches; it is reported, not counted
            if at.exception:
                raise RuntimeError(f"the customer page failed: {[e.value for e in at.exception]}")
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - start)
            messages = len(at.text)
        finally:
            if saved is None:
                os.environ.pop("ESCUCHA_DATABASE_URL", None)
            else:
                os.environ["ESCUCHA_DATABASE_URL"] = saved
            get_settings.cache_clear()
            get_engine.cache_clear()
            get_engine().dispose()
    return {
        "posts": posts,
        "customers": customers,
        "customer_posts": sum(i.posts for i in page.identities),
        "conversations": len(page.conversations),
        "texts_rendered": messages,
        "seed_s": round(seed_s, 1),
        "customer_load_s": round(load_s, 4),
        "runs": runs,
        "customer_render_s": round(statistics.median(times), 4),
        "customer_render_max_s": round(max(times), 4),
        "target_s": 1.0,
    }
