"""`escucha bench review`: the queue page's server time with 10,000 open posts, measured through AppTest."""

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
from models.tables import Author, Post, PostStatus, Score, Staff, utcnow
from review_app.launch import APP


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
          "p_neutral": 0.3, "p_positive": 0.1, "complaint": 0.7, "urgency": i % 101, "crisis": False,
          "language": "es" if i % 2 else "en", "reasons": ["complaint 0.70", "bench"], "model_id": "bench",
          "scored_at": now} for i in range(n)],
    )  # fmt: skip
    session.commit()
    assert manager.id is not None
    return manager.id


def bench_review(n: int = 10_000, *, runs: int = 5) -> dict[str, Any]:
    """Build ``n`` open posts in a temporary SQLite database and time the queue page's server render."""
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
            at = AppTest.from_file(str(APP), default_timeout=60)
            at.session_state["staff_id"] = manager_id
            at.session_state["lang"] = "en"
            at.run()  # the first render imports and warms caches; it is reported, not counted
            if at.exception:
                raise RuntimeError(f"the queue page failed: {[e.value for e in at.exception]}")
            first = at.run  # same session, as a person reloading the page
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                first()
                times.append(time.perf_counter() - start)
            cards = len(at.text)
            engine.dispose()
        finally:
            if saved is None:
                os.environ.pop("ESCUCHA_DATABASE_URL", None)
            else:
                os.environ["ESCUCHA_DATABASE_URL"] = saved
            get_settings.cache_clear()
            get_engine.cache_clear()
    return {
        "open_posts": n,
        "cards_rendered": cards,
        "runs": runs,
        "queue_render_s": round(statistics.median(times), 4),
        "queue_render_max_s": round(max(times), 4),
    }
