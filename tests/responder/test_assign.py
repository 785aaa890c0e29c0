"""The backlog sweep on SQLite and PostgreSQL: holding queue, redistribution, shifts, concurrent claims."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.alerts import unread_alerts
from models.tables import (
    Alert,
    Assignment,
    Author,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyState,
    Score,
    Shift,
    SlaEvent,
    utcnow,
)
from responder.assign import assign_pending, holding_queue
from responder.sla_sweep import sla_sweep
from tests.support.db import require_pg
from tests.support.factories import scored_post, staff


def _owner(session: Session, post: Post) -> int | None:
    session.refresh(post)
    return post.assignee_id


def test_nobody_eligible_holds_the_post_visibly_and_alerts_the_manager_once(session: Session) -> None:
    boss = staff(session, "Boss Lady", role="manager", channels="")  # a manager who takes no posts herself
    staff(session, "English Only", languages="en")
    post = scored_post(session, language="es")
    for _ in range(3):  # sweeps repeat; the alert must not
        result = assign_pending(session)
        session.commit()
        assert result.held == [post.id]
    assert [p.id for p in holding_queue(session)] == [post.id]
    alerts = unread_alerts(session, staff_id=boss.id)  # type: ignore[arg-type]
    assert [(a.kind, a.post_id) for a in alerts] == [("holding", post.id)]
    # When someone who can take it arrives, it leaves the holding queue.
    lucia = staff(session, "Lucía Romero", languages="es")
    assign_pending(session)
    session.commit()
    assert _owner(session, post) == lucia.id
    assert holding_queue(session) == []


def test_old_posts_are_never_dropped(session: Session) -> None:
    staff(session, "Ana Ruiz")
    ancient = scored_post(session, age_s=90 * 24 * 3600, urgency=1)
    assign_pending(session)
    session.commit()
    session.refresh(ancient)
    assert ancient.status == PostStatus.ASSIGNED


def test_held_posts_at_the_top_do_not_starve_assignable_ones(session: Session) -> None:
    staff(session, "Junior Agent")
    crises = [scored_post(session, crisis=True, urgency=99) for _ in range(6)]
    normal = scored_post(session, urgency=10)
    result = assign_pending(session, limit=3)
    session.commit()
    assert result.assigned == 1 and set(result.held) == {p.id for p in crises}
    session.refresh(normal)
    assert normal.status == PostStatus.ASSIGNED


def test_skills_and_shifts_decide_who_may_take_a_post(session: Session) -> None:
    now = utcnow()
    day = now.weekday()
    off = staff(session, "Off Shift")
    # A shift that ended two hours ago: not on shift now. Before 03:00 that shift was yesterday's (a shift clipped
    # to 00:00 today still covered the first hour of the day, and this test failed after midnight).
    minute = now.hour * 60 + now.minute
    ended = (day, minute - 120) if minute >= 180 else ((day - 1) % 7, 1440 - 60)
    session.add(Shift(staff_id=off.id, weekday=ended[0], start_minute=ended[1] - 60, end_minute=ended[1]))  # type: ignore[arg-type]
    on = staff(session, "On Shift")
    session.add(Shift(staff_id=on.id, weekday=day, start_minute=0, end_minute=1440))  # type: ignore[arg-type]
    session.commit()
    post = scored_post(session)
    assign_pending(session, now=now)
    session.commit()
    assert _owner(session, post) == on.id


def test_open_posts_of_someone_who_leaves_are_redistributed(session: Session) -> None:
    ana = staff(session, "Ana Ruiz")
    posts = [scored_post(session) for _ in range(3)]
    assign_pending(session)
    session.commit()
    assert {_owner(session, p) for p in posts} == {ana.id}
    ana.available = False
    session.add(ana)
    bea = staff(session, "Bea Soto")
    result = sla_sweep(session)
    session.commit()
    assert sorted(result.redistributed) == sorted(p.id for p in posts)
    assert {_owner(session, p) for p in posts} == {bea.id}
    # History is kept: Ana's assignments ended, Bea's are open; Ana's untouched drafts are superseded.
    ended = session.execute(
        select(func.count())
        .select_from(Assignment)
        .where(col(Assignment.staff_id) == ana.id, col(Assignment.ended_at).is_not(None))
    ).scalar_one()
    assert ended == 3
    pending = list(session.execute(select(Reply).where(col(Reply.state) == ReplyState.SUGGESTED)).scalars())
    assert len(pending) == 3 and all("Bea" in r.text for r in pending)


def test_redistribution_with_nobody_left_puts_posts_back_on_hold(session: Session) -> None:
    staff(session, "Boss", role="manager", channels="")
    ana = staff(session, "Ana Ruiz")
    post = scored_post(session)
    assign_pending(session)
    session.commit()
    ana.available = False
    session.add(ana)
    result = sla_sweep(session)
    session.commit()
    assert result.held == [post.id]
    session.refresh(post)
    assert post.status == PostStatus.SCORED and post.assignee_id is None and post.held_since is not None


def test_predicted_breach_is_reassigned_before_it_breaches(session: Session) -> None:
    busy = staff(session, "Busy Agent", capacity=50)
    # Ten complaints due within the hour; at five minutes each, the last ones cannot be reached in time.
    posts = [scored_post(session, complaint=0.9, age_s=40 * 60) for _ in range(10)]
    assign_pending(session)
    session.commit()
    free = staff(session, "Free Agent", capacity=50)
    result = sla_sweep(session, handle_s=5 * 60)
    session.commit()
    assert result.reassigned_predicted and not result.breached
    owners = {_owner(session, p) for p in posts}
    assert owners == {busy.id, free.id}
    # Once per due time: a second sweep does not move them back and forth.
    again = sla_sweep(session, handle_s=5 * 60)
    assert again.reassigned_predicted == []


def _bulk_posts(engine: Engine, n: int) -> None:
    now = utcnow()
    with Session(engine) as s:
        authors = [Author(network="x", external_id=f"a{i}", username=f"user{i}") for i in range(n)]
        s.add_all(authors)
        s.flush()
        posts = [
            Post(network="x", external_id=f"p{i}", kind=PostKind.MENTION, source="bench", author_id=authors[i].id,
                 text="my order never arrived", created_at=now - timedelta(seconds=i), needs_response=True,
                 status=PostStatus.SCORED, urgency=i % 100)
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


def test_eight_concurrent_workers_assign_each_post_once_within_capacity(pg_url: str) -> None:
    require_pg()
    from sqlmodel import SQLModel

    from ground.db import make_engine

    engine = make_engine(pg_url, pool_size=10)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        for i in range(20):
            staff(s, f"Agent {i}", capacity=40)  # 800 places for 1,000 posts: capacity is the binding limit
    _bulk_posts(engine, 1000)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            with Session(engine) as s:
                while True:
                    result = assign_pending(s, limit=40)
                    s.commit()
                    if result.assigned == 0:
                        return
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not errors, errors
    with Session(engine) as s:
        assert assign_pending(s).assigned == 0  # nothing was left that someone could take
        s.rollback()
        per_post = s.execute(select(col(Assignment.post_id), func.count()).group_by(col(Assignment.post_id))).all()
        assert per_post and max(n for _, n in per_post) == 1
        assert len(per_post) == 800
        loads = s.execute(
            select(col(Post.assignee_id), func.count()).where(col(Post.assignee_id).is_not(None))
            .group_by(col(Post.assignee_id))
        ).all()  # fmt: skip
        assert len(loads) == 20 and all(n == 40 for _, n in loads)
        drafts = s.execute(select(func.count()).select_from(Reply)).scalar_one()
        assert drafts == 800
        held = s.execute(
            select(func.count())
            .select_from(Post)
            .where(col(Post.held_since).is_not(None), col(Post.assignee_id).is_(None))
        ).scalar_one()
        # The sweeps take the team lock before they claim, so they run one at a time, like one worker: the first
        # one to find nobody with room holds its page of 40 and stops (the rest wait for room, unheld as before).
        assert held == 40
        assert s.execute(select(func.count()).select_from(Alert)).scalar_one() == 0  # no managers to alert
    engine.dispose()


def test_predicted_breach_sweep_over_busy_queues_records_each_post_once(session: Session) -> None:
    a = staff(session, "Agent A", capacity=50)
    urgent = [scored_post(session, complaint=0.9, age_s=40 * 60) for _ in range(10)]  # due in 20 minutes
    assign_pending(session)
    session.commit()
    c = staff(session, "Agent C", capacity=50)
    for _ in range(8):  # C's queue: posts due in hours, walked after A's
        scored_post(session, complaint=0.1, sentiment="neutral", age_s=60)
    assign_pending(session)
    session.commit()
    # Posts moved from A to C land behind C's later posts; walking C's queue must not record them again.
    result = sla_sweep(session, handle_s=5 * 60)
    session.commit()
    events = session.execute(
        select(col(SlaEvent.post_id), func.count()).where(col(SlaEvent.kind) == "predicted_breach")
        .group_by(col(SlaEvent.post_id))
    ).all()  # fmt: skip
    assert events and all(n == 1 for _, n in events)
    assert result.reassigned_predicted
    assert {_owner(session, p) for p in urgent} == {a.id, c.id}
