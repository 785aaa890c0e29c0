"""`escucha bench assign`: how fast the backlog sweep assigns a large backlog across a team."""

from __future__ import annotations

import math
import random
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

import models.tables  # noqa: F401  (registers the tables)
from models.schema import scratch_database
from models.tables import Assignment, Author, Post, PostKind, PostStatus, Reply, Score, Staff, utcnow
from responder.assign import assign_pending

SEED = 7


def _seed(engine: Engine, *, posts: int, staff: int, rnd: random.Random) -> int:
    """Store a bilingual team with enough total capacity and a scored backlog; return the capacity each."""
    capacity = math.ceil(posts * 1.2 / staff)
    now = utcnow()
    with Session(engine) as s:
        for i in range(staff):
            s.add(
                Staff(
                    name=f"Agent {i}",
                    email=f"agent{i}@bench",
                    languages=("es,en", "es", "en")[i % 3],
                    channels="public,dm" if i % 2 else "public",
                    senior=i % 5 == 0,
                    capacity=capacity,
                )
            )
        authors = [Author(network="x", external_id=f"a{i}", username=f"user{i}") for i in range(posts)]
        s.add_all(authors)
        s.flush()
        rows = []
        for i, author in enumerate(authors):
            rows.append(
                Post(
                    network="x" if i % 3 else "facebook",
                    external_id=f"p{i}",
                    kind=PostKind.DM if i % 10 == 0 else PostKind.MENTION,
                    source="bench",
                    author_id=author.id,
                    text="my order never arrived?" if i % 2 else "llevo semanas esperando mi pedido",
                    created_at=now - timedelta(seconds=rnd.randint(0, 86_400)),
                    needs_response=True,
                    status=PostStatus.SCORED,
                    urgency=rnd.randint(0, 100),
                )
            )
        s.add_all(rows)
        s.flush()
        for i, p in enumerate(rows):
            neg = rnd.random()
            s.add(
                Score(
                    post_id=p.id,  # type: ignore[arg-type]
                    sentiment="negative" if neg > 0.5 else "neutral",
                    p_negative=neg,
                    p_neutral=(1 - neg) / 2,
                    p_positive=(1 - neg) / 2,
                    complaint=rnd.random(),
                    urgency=p.urgency or 0,
                    crisis=i % 33 == 0,
                    language="en" if i % 2 else "es",
                    reasons=["bench"],
                    model_id="bench",
                )
            )
        s.commit()
    return capacity


def bench_assign(
    posts: int = 10_000, staff: int = 50, *, database_url: str | None = None, batch: int = 500
) -> dict[str, Any]:
    """Seed a backlog and a team, sweep until nothing more can be assigned; report assignments per second."""
    rnd = random.Random(SEED)
    with scratch_database(database_url) as engine:
        capacity = _seed(engine, posts=posts, staff=staff, rnd=rnd)
        assigned = held = sweeps = 0
        started = time.perf_counter()
        with Session(engine) as session:
            while True:
                result = assign_pending(session, limit=batch)
                session.commit()
                sweeps += 1
                assigned += result.assigned
                held = len(result.held)
                if result.assigned == 0:
                    break
        seconds = time.perf_counter() - started
        with Session(engine) as session:
            rows = session.execute(select(func.count()).select_from(Assignment)).scalar_one()
            drafts = session.execute(select(func.count()).select_from(Reply)).scalar_one()
            top = session.execute(
                select(func.count()).where(col(Post.assignee_id).is_not(None)).group_by(col(Post.assignee_id))
            ).scalars()
            max_load = max(top, default=0)
        return {
            "backend": engine.dialect.name,
            "posts": posts,
            "staff": staff,
            "capacity_each": capacity,
            "batch": batch,
            "sweeps": sweeps,
            "assigned": assigned,
            "held": held,
            "assignment_rows": int(rows),
            "drafts": int(drafts),
            "max_load": int(max_load),
            "seconds": round(seconds, 3),
            "assignments_per_s": round(assigned / seconds, 1) if seconds > 0 else None,
        }
