"""`escucha bench review`: server time of the queue, crisis, approvals and notifications pages with 10,000 open
posts.

Measured through AppTest (the script run on the server, no browser). Every open post has its answer: most are
machine suggestions, one in 20 an agent's submission waiting for approval; one in 25 is a crisis (the crisis
view lists its first page of 50 out of them); the manager has 2,000 alerts.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, SQLModel

from ground.db import get_engine
from ground.settings import get_settings
from models.tables import Alert, Author, Post, PostStatus, Reply, ReplyState, Score, Staff, utcnow
from review_app.launch import APP

CRISIS_EVERY = 25


def seed_open_posts(session: Session, *, n: int) -> int:
    """Insert ``n`` scored open posts (with authors) and one manager in bulk; return the manager's id."""
    now = utcnow()
    manager = Staff(name="Bench Manager", email="bench@escucha", role="manager")
    session.add(manager)
    session.flush()
    session.execute(
        insert(Author),
        [{"network": "x", "external_id": f"a{i}", "username": f"user{i}", "followers_count": i * 7,
          "verified": i % 50 == 0, "updated_at": now} for i in range(n)],
    )  # fmt: skip
    session.execute(
        insert(Post),
        [{"network": "x" if i % 3 else "facebook", "external_id": f"p{i}", "kind": "dm" if i % 7 == 0 else "mention",
          "source": "bench", "author_id": i + 1, "text": f"post {i}: my order <b>{i}</b> never arrived",
          "is_public": i % 7 != 0, "manual_only": False, "created_at": now - timedelta(seconds=i * 13),
          "ingested_at": now, "needs_response": True, "status": PostStatus.SCORED, "urgency": i % 101}
         for i in range(n)],
    )  # fmt: skip
    session.execute(
        insert(Score),
        [{"post_id": i + 1, "sentiment": ("negative", "neutral", "positive")[i % 3], "p_negative": 0.6,
          "p_neutral": 0.3, "p_positive": 0.1, "complaint": 0.7, "urgency": i % 101, "crisis": i % CRISIS_EVERY == 0,
          "language": "es" if i % 2 else "en", "model_id": "bench", "scored_at": now,
          "reasons": ["complaint 0.70", "bench", *(["crisis: legal threat"] if i % CRISIS_EVERY == 0 else [])]}
         for i in range(n)],
    )  # fmt: skip
    session.commit()
    assert manager.id is not None
    return manager.id


SUBMITTED_EVERY = 20
ALERTS = 2_000


def seed_answers(session: Session, *, n: int, manager_id: int) -> int:
    """Give each of the ``n`` posts its answer (a suggestion, or every 20th an agent's submission) and the
    manager ``ALERTS`` alerts, half unread; return how many answers wait for approval."""
    now = utcnow()
    agent = Staff(name="Bench Agent", email="agent@escucha", role="agent")
    session.add(agent)
    session.flush()
    pending = [i for i in range(n) if i % SUBMITTED_EVERY == 0]
    session.execute(
        insert(Reply),
        [{"post_id": i + 1, "kind": "answer", "text": f"Hi, sorry about order {i}: it ships today <b>{i}</b>",
          "suggested_text": f"Hi, sorry about order {i}.", "idempotency_key": f"bench-{i}",
          "state": ReplyState.PENDING_APPROVAL if i % SUBMITTED_EVERY == 0 else ReplyState.SUGGESTED,
          "author_staff_id": agent.id, "submitted_by_id": agent.id if i % SUBMITTED_EVERY == 0 else None,
          "submitted_at": now - timedelta(seconds=i) if i % SUBMITTED_EVERY == 0 else None, "attempts": 0,
          "created_at": now, "updated_at": now} for i in range(n)],
    )  # fmt: skip
    session.execute(
        insert(Alert),
        [{"key": f"bench:{i}", "kind": ("breach", "crisis", "escalation", "team_full", "rejected")[i % 5],
          "staff_id": manager_id, "post_id": (i % n) + 1, "message": f"bench alert {i}",
          "created_at": now - timedelta(seconds=i), "read_at": now if i % 2 else None, "push_attempts": 0}
         for i in range(ALERTS)],
    )  # fmt: skip
    session.commit()
    return len(pending)


PAGES = {
    "queue": None,
    "crisis": "views/crisis.py",
    "approvals": "views/approvals.py",
    "notifications": "views/notifications.py",
}


def _time_page(at: Any, page: str | None, runs: int) -> list[float]:
    """Open ``page`` (None: the first page), then time ``runs`` reruns of it, as a person reloading it."""
    if page is not None:
        at.switch_page(page)
    at.run()  # the first render of a page imports and warms caches; it is not counted
    if at.exception:
        raise RuntimeError(f"{page or 'queue'} failed: {[e.value for e in at.exception]}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    return times


def bench_review(n: int = 10_000, *, runs: int = 5) -> dict[str, Any]:
    """Build ``n`` open posts with answers in a temporary SQLite and time the queue, approvals and notifications."""
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as tmp:
        saved = os.environ.get("ESCUCHA_DATABASE_URL")
        os.environ["ESCUCHA_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.db'}"
        get_settings.cache_clear()
        get_engine.cache_clear()
        try:
            engine = get_engine()
            SQLModel.metadata.create_all(engine)
            with Session(engine) as session:
                manager_id = seed_open_posts(session, n=n)
                waiting = seed_answers(session, n=n, manager_id=manager_id)
            at = AppTest.from_file(str(APP), default_timeout=60)
            at.session_state["staff_id"] = manager_id
            at.session_state["lang"] = "en"
            times: dict[str, list[float]] = {}
            shown: dict[str, int] = {}
            for name, page in PAGES.items():
                times[name] = _time_page(at, page, runs)
                shown[name] = len(at.text) + len(at.get("html"))
            engine.dispose()
        finally:
            if saved is None:
                os.environ.pop("ESCUCHA_DATABASE_URL", None)
            else:
                os.environ["ESCUCHA_DATABASE_URL"] = saved
            get_settings.cache_clear()
            get_engine.cache_clear()
    report: dict[str, Any] = {
        "open_posts": n, "crisis_posts": len(range(0, n, CRISIS_EVERY)), "waiting_for_approval": waiting,
        "alerts": ALERTS, "runs": runs,
    }  # fmt: skip
    for name, measured in times.items():
        report[f"{name}_elements"] = shown[name]
        report[f"{name}_render_s"] = round(statistics.median(measured), 4)
        report[f"{name}_render_max_s"] = round(max(measured), 4)
    return report
