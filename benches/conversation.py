"""`escucha bench conversation`: server time to build and render the desk's conversation pages on a large database.

100,000 posts from 20,000 customers in 25,000 conversations (one of them 300 messages long), with scores, replies,
history and notes, on a scratch PostgreSQL schema made by the migrations. Each page is rendered through AppTest,
as the server renders it for a browser: the queries that build its data and the Streamlit script that draws it.

The measurements are a dict of named page runs (``MEASUREMENTS``): another page adds one entry and reports
``<name>_s`` (the median) and ``<name>_max_s`` beside the others.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from ground.db import get_engine
from ground.settings import get_settings
from models.schema import scratch_database
from models.tables import AuditEvent, Author, Conversation, Customer, Note, Post, Reply, Score, Staff, utcnow
from review_app.launch import APP

VIEWS = Path(APP).parent / "views"
BATCH = 5000
BIG = 300  # messages in the one long conversation the conversation page is timed on


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the pages are opened on."""

    manager_id: int
    big_conversation_id: int
    customer_author_ids: list[int]
    posts: int
    customers: int
    conversations: int


def _rows(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(model.__table__), rows[start : start + BATCH])


def seed(engine: Engine, *, posts: int = 100_000, customers: int = 20_000, agents: int = 20) -> Seeded:
    """Store a team, ``customers`` authors, their conversations and ``posts`` messages in bulk (explicit ids)."""
    now = utcnow()
    staff = [{"id": 1, "name": "Bench Manager", "email": "manager@bench", "role": "manager"}]
    staff += [{"id": i + 2, "name": f"Agent {i}", "email": f"agent{i}@bench", "role": "agent"} for i in range(agents)]
    _rows(engine, Staff, [{**s, "languages": "es,en", "channels": "public,dm", "senior": False, "skills": "",
                           "capacity": 10_000, "available": True, "created_at": now, "failed_logins": 0,
                           "ui_language": "en", "disabled": False} for s in staff])  # fmt: skip
    # One customer per identity, as the store gives them (models/customers.py), so the customer page has a person.
    _rows(engine, Customer, [{"id": a + 1, "created_at": now} for a in range(customers)])
    _rows(engine, Author, [{"id": a + 1, "network": "x" if a % 2 else "facebook", "external_id": f"c{a}",
                            "username": f"cliente_{a}", "display_name": f"Cliente {a}", "followers_count": a % 900,
                            "verified": False, "updated_at": now, "customer_id": a + 1}
                           for a in range(customers)])  # fmt: skip
    # One or two conversations per customer; a quarter of them still waiting for us.
    convs: list[dict[str, Any]] = []
    for a in range(customers):
        for k in range(1 + (a % 4 == 0)):
            cid = len(convs) + 1
            network = "x" if a % 2 else "facebook"
            convs.append({"id": cid, "network": network, "kind": "dm" if cid % 3 == 0 else "public",
                          "thread_key": f"bench:{a}:{k}", "author_id": a + 1, "assignee_id": 2 + cid % agents,
                          "status": "open" if cid % 4 == 1 else "closed", "first_unanswered_at": None,
                          "last_message_at": now, "created_at": now})  # fmt: skip
    post_rows: list[dict[str, Any]] = []
    score_rows: list[dict[str, Any]] = []
    reply_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    last_of: dict[int, int] = {}
    for i in range(posts):
        # The first BIG posts are the long conversation (id 1); the rest go round the others.
        cid = 1 if i < BIG else 2 + (i % (len(convs) - 1))
        conv = convs[cid - 1]
        own = i % 4 == 3
        waiting = conv["status"] == "open" and not own
        at = now - timedelta(seconds=(posts - i) * 7)
        pid = i + 1
        post_rows.append({"id": pid, "network": conv["network"], "external_id": f"p{i}",
                          "kind": "own" if own else ("dm" if conv["kind"] == "dm" else "mention"), "source": "bench",
                          "author_id": None if own else conv["author_id"],
                          "text": f"mensaje {i}: mi pedido #{5000 + i % 900} <b>no llegó</b>",
                          "is_public": conv["kind"] != "dm", "manual_only": False, "conversation_id": f"t{cid}",
                          "in_reply_to_external_id": f"p{last_of[cid] - 1}" if cid in last_of else None,
                          "created_at": at, "ingested_at": at, "needs_response": not own,
                          "status": ("assigned" if waiting else "no_action" if own else "replied"),
                          "assignee_id": conv["assignee_id"] if waiting else None, "urgency": i % 101,
                          "due_at": at + timedelta(hours=1) if waiting else None,
                          "conversation_ref": cid})  # fmt: skip
        last_of[cid] = pid
        conv["last_message_at"] = at
        if waiting and conv["first_unanswered_at"] is None:
            conv["first_unanswered_at"] = at
        if own:
            continue
        score_rows.append({"post_id": pid, "sentiment": ("negative", "neutral", "positive")[i % 3], "p_negative": 0.6,
                           "p_neutral": 0.3, "p_positive": 0.1, "complaint": 0.7, "urgency": i % 101,
                           "crisis": i % 97 == 0, "language": "es" if i % 2 else "en", "reasons": ["bench"],
                           "model_id": "bench", "scored_at": at})  # fmt: skip
        state = "pending_approval" if waiting else "sent"
        reply_rows.append({"id": len(reply_rows) + 1, "post_id": pid, "kind": "answer", "state": state,
                           "text": f"Hola, lo revisamos ({i})", "suggested_text": f"Hola, lo revisamos ({i})",
                           "idempotency_key": f"k{i}", "attempts": 0, "created_at": at, "updated_at": at,
                           "sent_at": None if waiting else at, "approved_by_id": None if waiting else 1,
                           "provenance": None if waiting else {"model_id": "bench", "approved_by": "Bench Manager",
                                                               "edited": False}})  # fmt: skip
        audit_rows.append({"at": at, "actor": "auto:policy", "action": "assigned", "post_id": pid, "reply_id": None,
                           "detail": {"staff_id": conv["assignee_id"]}})  # fmt: skip
        if not waiting:
            audit_rows.append({"at": at, "actor": "auto:outbox", "action": "reply_sent", "post_id": pid,
                               "reply_id": len(reply_rows), "detail": {}})  # fmt: skip
    for conv in convs:
        if conv["status"] == "open" and conv["first_unanswered_at"] is None:
            conv["status"] = "closed"
    _rows(engine, Conversation, convs)
    _rows(engine, Post, post_rows)
    _rows(engine, Score, score_rows)
    _rows(engine, Reply, reply_rows)
    _rows(engine, AuditEvent, audit_rows)
    notes = [{"conversation_id": 1 + (n * 10) % len(convs), "staff_id": 2 + n % agents, "text": f"nota {n}",
              "created_at": now} for n in range(len(convs) // 10)]  # fmt: skip
    _rows(engine, Note, notes)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # Explicit ids leave the sequences behind; a page that writes (a note) must not collide.
            for table in ("staff", "customer", "author", "conversation", "post", "reply", "note", "auditevent"):
                query = "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT coalesce(max(id), 1) FROM {t}))"
                conn.execute(text(query.format(t=table)))
            conn.execute(text("ANALYZE"))
    return Seeded(manager_id=1, big_conversation_id=1, customer_author_ids=[1], posts=posts, customers=customers,
                  conversations=len(convs))  # fmt: skip


def _page(path: Path, seeded: Seeded, **query: str) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(path), default_timeout=120)
    at.session_state["staff_id"] = seeded.manager_id
    at.session_state["lang"] = "en"
    for key, value in query.items():
        at.query_params[key] = value
    return at


# Each measurement opens one page the way a person does; the bench reports ``<name>_s`` for each.
MEASUREMENTS: dict[str, Callable[[Seeded], Any]] = {
    "queue_render": lambda seeded: _page(Path(APP), seeded),
    "conversation_render": lambda seeded: _page(VIEWS / "conversation.py", seeded, id=str(seeded.big_conversation_id)),
    # The person behind the 300-message conversation (their customer id is their author id in this seed).
    "customer_render": lambda seeded: _page(VIEWS / "customer.py", seeded, id=str(seeded.customer_author_ids[0])),
}


@contextmanager
def _desk_on(engine: Engine) -> Iterator[None]:
    """Point the desk's own engine (``ESCUCHA_DATABASE_URL``) at the bench's database for the page runs."""
    saved = os.environ.get("ESCUCHA_DATABASE_URL")
    os.environ["ESCUCHA_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        yield
    finally:
        get_engine().dispose()
        if saved is None:
            os.environ.pop("ESCUCHA_DATABASE_URL", None)
        else:
            os.environ["ESCUCHA_DATABASE_URL"] = saved
        get_settings.cache_clear()
        get_engine.cache_clear()


def time_page(at: Any, runs: int) -> list[float]:
    """Render once to warm up (imports, caches), then time ``runs`` renders of the same session."""
    at.run()
    if at.exception:
        raise RuntimeError(f"the page failed: {[e.value for e in at.exception]}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"the page failed: {[e.value for e in at.exception]}")
    return times


def bench_conversation(
    *, database_url: str | None, posts: int = 100_000, customers: int = 20_000, runs: int = 5
) -> dict[str, Any]:
    """Seed the large database, then time every page in ``MEASUREMENTS``; target < 1 s each."""
    report: dict[str, Any] = {}
    with scratch_database(database_url, migrations=True, prefix="bench_conv") as engine:
        started = time.perf_counter()
        seeded = seed(engine, posts=posts, customers=customers)
        report.update(backend=engine.dialect.name, posts=seeded.posts, customers=seeded.customers,
                      conversations=seeded.conversations, conversation_messages=BIG,
                      seed_s=round(time.perf_counter() - started, 1), runs=runs)  # fmt: skip
        with _desk_on(engine):
            for name, make in MEASUREMENTS.items():
                times = time_page(make(seeded), runs)
                report[f"{name}_s"] = round(statistics.median(times), 4)
                report[f"{name}_max_s"] = round(max(times), 4)
    report["target_s"] = 1.0
    report["met"] = all(report[f"{name}_s"] < 1.0 for name in MEASUREMENTS)
    return report
