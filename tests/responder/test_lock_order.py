"""One lock order across the assignment, SLA and care sweeps: run together on PostgreSQL, none deadlocks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from ground.db import make_engine
from models.tables import Assignment, Author, Post, PostKind, PostStatus, Score, utcnow
from responder.assign import assign_pending
from responder.care import CareOptions, care_sweep
from responder.sla_sweep import sla_sweep
from tests.support.db import require_pg
from tests.support.factories import staff

ROUNDS = 12


def _backlog(engine: Engine, n: int) -> None:
    # A worker starting on a backlog: scored posts with no due time yet (the SLA sweep stamps them, the
    # assignment sweep claims them), a third of them DMs (the care sweep acknowledges them once assigned).
    now = utcnow()
    with Session(engine) as s:
        authors = [Author(network="x", external_id=f"a{i}", username=f"user{i}") for i in range(n)]
        s.add_all(authors)
        s.flush()
        posts = [
            Post(network="x", external_id=f"p{i}", kind=PostKind.DM if i % 3 == 0 else PostKind.MENTION,
                 source="test", author_id=authors[i].id, text="my order never arrived", is_public=i % 3 != 0,
                 created_at=now - timedelta(seconds=30 * i), needs_response=True, status=PostStatus.SCORED,
                 urgency=i % 100)
            for i in range(n)
        ]  # fmt: skip
        s.add_all(posts)
        s.flush()
        s.add_all(
            Score(post_id=p.id, sentiment="negative", p_negative=0.6, p_neutral=0.2, p_positive=0.2, complaint=0.7,
                  urgency=p.urgency or 0, language="en", reasons=[], model_id="test")
            for p in posts
        )  # fmt: skip
        s.commit()


def test_assign_sla_and_care_sweeps_run_together_without_deadlock(pg_url: str) -> None:
    require_pg()
    engine = make_engine(pg_url, pool_size=8)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        for i in range(12):
            staff(s, f"Agent {i}", capacity=25, senior=i % 4 == 0)
        staff(s, "Boss", role="manager", channels="")
    _backlog(engine, 600)
    options = CareOptions(ack_dms=True, updates=True, satisfaction=True)
    sweeps: dict[str, Callable[[Session], object]] = {
        "assign": lambda s: assign_pending(s, limit=40),
        "sla": lambda s: sla_sweep(s, handle_s=60),
        "care": lambda s: care_sweep(s, options=options),
    }
    barrier = threading.Barrier(2 * len(sweeps))
    errors: list[str] = []

    def work(name: str) -> None:
        barrier.wait()
        for _ in range(ROUNDS):
            with Session(engine) as s:
                try:
                    sweeps[name](s)
                    s.commit()
                except Exception as exc:  # every failure is reported below, deadlocks by name
                    s.rollback()
                    errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=work, args=(name,)) for name in sweeps for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a sweep is stuck"
    assert not errors, errors
    with Session(engine) as s:
        per_post = s.execute(select(col(Assignment.post_id), func.count()).group_by(col(Assignment.post_id))).all()
        assert per_post  # the sweeps did work while they ran side by side
        assigned = s.execute(
            select(func.count()).select_from(Post).where(col(Post.status) == PostStatus.ASSIGNED)
        ).scalar_one()
        assert assigned <= 12 * 25  # nobody was given more than their capacity
    engine.dispose()
