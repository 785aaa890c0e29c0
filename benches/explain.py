"""`escucha bench explain`: which index each hot query of the workers uses, on PostgreSQL with a large table.

A throw-away schema is built by the real migrations (the production index set), filled server-side with
``--posts`` posts in the states a busy desk has (most answered, a few hundred new, scored or waiting to be sent),
then each stage runs once (score, re-score, assign, SLA, care, outbox, ingest) while every statement it sends is
captured. Each captured statement is run again under ``EXPLAIN (ANALYZE, BUFFERS)`` in a transaction that is
rolled back, and the report says which indexes it used, which tables it read in full, and how long it took.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from ground.db import normalise_url
from models.schema import scratch_database

ROOT = Path(__file__).resolve().parent.parent
# Where a statement comes from: the first frame in the product's own packages.
OWN = ("classifier", "responder", "models", "listeners")
SEED_SQL = """
INSERT INTO staff (name, email, role, languages, channels, senior, skills, capacity, available, created_at,
                   failed_logins, ui_language)
SELECT 'Agent ' || s, 'agent' || s || '@explain', 'agent', 'es,en', 'public,dm', s % 2 = 0, '', 100000, true, now(),
       0, 'es'
FROM generate_series(1, :staff) AS s;

INSERT INTO author (network, external_id, username, display_name, followers_count, verified, updated_at)
SELECT 'x', 'a' || a, 'user' || a, 'User ' || a, a % 5000, false, now() FROM generate_series(1, :authors) AS a;

INSERT INTO post (network, external_id, kind, source, text, is_public, manual_only, created_at, ingested_at,
                  needs_response, status)
SELECT 'facebook', 'pp' || p, 'page_post', 'explain', 'Nueva colección', true, false, now() - interval '8 days',
       now() - interval '8 days', false, 'no_action'
FROM generate_series(0, 2) AS p;

INSERT INTO post (network, external_id, kind, source, author_id, text, lang, is_public, manual_only, created_at,
                  ingested_at, needs_response, status, due_at, promised_at, assignee_id, urgency, resolved_at,
                  in_reply_to_external_id, parent_id)
SELECT CASE WHEN i % 10 < 7 THEN 'x' ELSE 'facebook' END,
       'p' || i,
       CASE WHEN i % 10 < 5 THEN 'mention' WHEN i % 10 < 7 THEN 'dm' ELSE 'comment' END,
       'explain', 1 + i % :authors, 'mi pedido no llega #' || i, 'es', i % 10 NOT IN (5, 6), false,
       t, t + interval '3 seconds',
       CASE WHEN st = 'new' THEN NULL ELSE st <> 'no_action' END,
       st,
       CASE WHEN st = 'new' THEN NULL ELSE t + interval '1 hour' END,
       CASE WHEN st = 'assigned' AND i % 10 IN (5, 6) THEN t + interval '1 hour' END,
       CASE WHEN st IN ('assigned', 'replied', 'dismissed') THEN 1 + i % :staff END,
       CASE WHEN st = 'new' THEN NULL ELSE (i * 37) % 101 END,
       CASE WHEN st IN ('replied', 'dismissed') THEN t + interval '20 minutes' END,
       CASE WHEN i % 10 >= 7 THEN 'pp' || i % 3 END,
       CASE WHEN i % 10 >= 7 THEN 1 + i % 3 END
FROM (
    SELECT i, now() - (:posts - i) * (interval '7 days' / :posts) AS t,
           CASE WHEN i % 1000 < 3 THEN 'new' WHEN i % 1000 < 8 THEN 'scored' WHEN i % 1000 < 38 THEN 'assigned'
                WHEN i % 1000 < 138 THEN 'no_action' WHEN i % 1000 < 148 THEN 'dismissed' ELSE 'replied' END AS st
    FROM generate_series(1, :posts) AS i
) AS g;

INSERT INTO score (post_id, sentiment, p_negative, p_neutral, p_positive, complaint, urgency, crisis, language,
                   reasons, model_id, scored_at)
SELECT id, 'negative', 0.7, 0.2, 0.1, 0.8, urgency, false, 'es', '[]', 'escucha-e5s6-multitask-v1',
       ingested_at + interval '1 second'
FROM post WHERE status <> 'new' AND kind <> 'page_post';

INSERT INTO assignment (post_id, staff_id, assigned_at, ended_at, performed_by, reason)
SELECT id, assignee_id, ingested_at + interval '3 seconds', resolved_at, 'auto:policy', 'sweep'
FROM post WHERE assignee_id IS NOT NULL;

INSERT INTO reply (post_id, kind, state, text, suggested_text, idempotency_key, author_staff_id, attempts,
                   approved_at, created_at, updated_at, sent_at, external_id)
SELECT id, 'answer',
       CASE WHEN status = 'replied' THEN 'sent' WHEN status = 'dismissed' THEN 'rejected'
            WHEN id % 1000 < 20 THEN 'approved' ELSE 'suggested' END,
       'Gracias, lo revisamos', 'Gracias, lo revisamos', md5('answer' || id), assignee_id, 1,
       CASE WHEN status = 'replied' OR id % 1000 < 20 THEN resolved_at END,
       ingested_at + interval '3 seconds', ingested_at + interval '3 seconds',
       CASE WHEN status = 'replied' THEN resolved_at END,
       CASE WHEN status = 'replied' THEN 'r' || id END
FROM post WHERE assignee_id IS NOT NULL
UNION ALL
SELECT id, 'ack', 'sent', 'Hola, te responde', 'Hola, te responde', md5('ack' || id), NULL, 1,
       ingested_at + interval '4 seconds', ingested_at + interval '4 seconds', ingested_at + interval '4 seconds',
       ingested_at + interval '5 seconds', 'k' || id
FROM post WHERE kind = 'dm' AND assignee_id IS NOT NULL;

INSERT INTO auditevent (at, actor, action, post_id, detail)
SELECT assigned_at, 'auto:policy', 'assigned', post_id, '{}' FROM assignment;

INSERT INTO sourcecursor (network, source, seen_ids, healthy, posts_ingested, requests_made, paging, rate_limits,
                          budget_month, month_posts_read, month_requests)
VALUES ('x', 'mentions', '[]', true, 0, 0, '{}', '{}', '', 0, 0),
       ('x', 'dms', '[]', true, 0, 0, '{}', '{}', '', 0, 0),
       ('facebook', 'feed', '[]', true, 0, 0, '{}', '{}', '', 0, 0);
"""


@contextlib.contextmanager
def migrated_schema(database_url: str) -> Iterator[Engine]:
    """A throw-away PostgreSQL schema built by the migrations; dropped afterwards."""
    if make_url(normalise_url(database_url)).get_backend_name() != "postgresql":
        raise ValueError("bench explain needs PostgreSQL (EXPLAIN and SKIP LOCKED are what it looks at)")
    with scratch_database(database_url, migrations=True, prefix="explain") as engine:
        yield engine


def seed(engine: Engine, *, posts: int, staff: int = 100) -> dict[str, int]:
    """Fill the schema server-side; return the row count of each table, after ANALYZE."""
    params = {"posts": posts, "staff": staff, "authors": max(1, posts // 5)}
    with engine.begin() as conn:
        for statement in SEED_SQL.split(";\n"):
            if statement.strip():
                conn.execute(text(statement), params)
    tables = ("post", "score", "assignment", "reply", "auditevent", "author", "staff")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"ANALYZE {table}"))
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in tables}  # noqa: S608


def _origin() -> str:
    """``package/module.py:function`` that sent the statement; ``flush in …`` for the ORM writing its changes."""
    stack = inspect.stack()[2:]
    flushing = any(f.function == "flush" and "sqlalchemy" in f.filename for f in stack)
    for frame in stack:
        with contextlib.suppress(ValueError):
            rel = Path(frame.filename).resolve().relative_to(ROOT)
            if rel.parts and rel.parts[0] in OWN:
                where = f"{rel.as_posix()}:{frame.function}"
                return f"flush in {where}" if flushing else where
    return "?"


@contextlib.contextmanager
def capture(engine: Engine) -> Iterator[list[tuple[str, str, Any]]]:
    """Collect (origin, SQL, parameters) of every statement the engine runs inside the block."""
    seen: list[tuple[str, str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many:
            seen.append((_origin(), statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def run_stages(engine: Engine, *, satisfaction: bool = False) -> list[tuple[str, str, Any]]:
    """Run each worker stage once against the seeded schema and return the statements they sent.

    ``satisfaction`` also runs the survey sweep (on by default in the product, off here because it is slow on this
    seeded table: it queues a survey for every post answered in the last day).
    """
    from classifier.lexicon_scorer import LexiconScorer
    from classifier.pipeline import rescore_open, score_pending
    from models.store import record_fetch
    from models.tables import utcnow
    from networks.base import IncomingAuthor, IncomingPost
    from responder.assign import assign_pending
    from responder.care import CareOptions, care_sweep
    from responder.outbox import reconcile_sending, send_approved
    from responder.sla_sweep import sla_sweep

    scorer = LexiconScorer()
    incoming = [
        IncomingPost(network="x", external_id=f"new{i}", kind="mention", source="mentions", text="hola",
                     created_at=utcnow(), author=IncomingAuthor(network="x", external_id=f"a{i}", username=f"u{i}"))
        for i in (1, 2)
    ]  # fmt: skip
    with capture(engine) as statements:
        # Session-bound stages run in a transaction that is rolled back, so each sees the seeded state.
        for stage in (
            lambda s: score_pending(s, scorer, limit=256),
            lambda s: rescore_open(s, scorer, limit=256),
            lambda s: assign_pending(s, limit=1024),
            lambda s: sla_sweep(s),
            lambda s: care_sweep(s, options=CareOptions(satisfaction=satisfaction)),
            lambda s: record_fetch(s, network="x", source="mentions", next_cursor="9", posts=incoming),
        ):
            with Session(engine) as session:
                stage(session)
                session.rollback()
        # The outbox commits on its own; with no senders each approved reply is only claimed and given back.
        reconcile_sending(engine, {}, older_than=timedelta(0))
        send_approved(engine, {}, limit=50)
    return statements


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def explain(engine: Engine, statement: str, parameters: Any, *, text_plan: bool = False) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) one statement in a transaction that is rolled back; summarise the plan."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            raw = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters).scalar_one()
        finally:
            trans.rollback()
        lines: list[str] = []
        if text_plan:
            trans = conn.begin()
            try:
                lines = [str(r[0]) for r in conn.exec_driver_sql("EXPLAIN (ANALYZE) " + statement, parameters)]
            finally:
                trans.rollback()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    nodes = list(_walk(plan["Plan"]))
    extra = {"plan": lines} if text_plan else {}
    return {
        **extra,
        "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
        "seq_scans": sorted({n["Relation Name"] for n in nodes if n.get("Node Type") == "Seq Scan"}),
        "top": plan["Plan"]["Node Type"],
        "ms": round(float(plan.get("Execution Time", 0.0)), 2),
        "shared_hit_blocks": int(plan["Plan"].get("Shared Hit Blocks", 0)),
    }


SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "max_connections",
    "autovacuum",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_analyze_scale_factor",
    "random_page_cost",
)
INTERESTING = re.compile(r"^\s*(SELECT|UPDATE|DELETE|INSERT .* ON CONFLICT)", re.IGNORECASE | re.DOTALL)


def bench_explain(
    database_url: str,
    *,
    posts: int = 100_000,
    indexes: Sequence[str] = (),
    plans: bool = False,
    satisfaction: bool = False,
) -> dict[str, Any]:
    """Seed ``posts`` posts in a migrated throw-away schema, run each stage, EXPLAIN what it sent.

    ``indexes`` are extra ``CREATE INDEX`` statements tried before the stages run (to judge an index before
    writing its migration); ``plans`` adds each statement's text plan.
    """
    with migrated_schema(database_url) as engine:
        if indexes:
            with engine.begin() as conn:
                for ddl in indexes:
                    conn.exec_driver_sql(ddl)
        rows = seed(engine, posts=posts)
        statements = run_stages(engine, satisfaction=satisfaction)
        seen: set[str] = set()
        report: list[dict[str, Any]] = []
        for origin, sql, params in statements:
            key = f"{origin}|{sql}"
            if key in seen or not INTERESTING.match(sql) or "pg_catalog" in sql or "alembic" in sql:
                continue
            seen.add(key)
            summary = explain(engine, sql, params, text_plan=plans)
            report.append({"origin": origin, "sql": " ".join(sql.split())[:600], **summary})
        settings = {}
        with engine.connect() as conn:
            for name in SERVER_SETTINGS:
                settings[name] = str(conn.exec_driver_sql(f"SHOW {name}").scalar_one())
    return {"posts": posts, "rows": rows, "extra_indexes": list(indexes), "server": settings, "statements": report}
