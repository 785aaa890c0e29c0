"""Promises from a forecast: queue, shifts, measured handling time, margin, floor, words in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.tables import Reply, ReplyKind, ReplyState, utcnow
from responder.assign import assign_pending
from responder.forecast import (
    DEFAULT_HANDLE_S,
    REUSE_FROM,
    REUSE_S,
    HandlingRates,
    PromiseRules,
    duration_words,
    forecast,
    queue_ahead,
    queues_ahead,
)
from responder.sla_targets import Window
from tests.support.factories import scored_post, staff

MONDAY = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
OFFICE = [Window(day, 9 * 60, 17 * 60, "UTC") for day in range(5)]


def test_a_long_queue_gives_a_later_promise() -> None:
    now = MONDAY + timedelta(hours=10)
    short = forecast(now=now, ahead=0, lane_name="complaint")
    long = forecast(now=now, ahead=20, lane_name="complaint")
    assert long.at > short.at
    # 21 answers of 5 minutes, half as long again: 2 h 37.5 min of work, promised as "within 3 hours".
    assert (long.unit, long.count) == ("hours", 3) and long.words("es") == "en menos de 3 horas"
    assert long.basis["ahead"] == 20 and long.basis["handle_s"] == DEFAULT_HANDLE_S


def test_shifts_carry_a_promise_over_to_the_next_morning() -> None:
    late = MONDAY + timedelta(hours=16, minutes=55)
    promise = forecast(now=late, ahead=4, lane_name="complaint", shifts=OFFICE)
    # 37.5 minutes of work: 5 today, the rest from 9:00 on Tuesday.
    assert datetime.fromisoformat(promise.basis["forecast_at"]) == MONDAY + timedelta(days=1, hours=9, minutes=32.5)
    assert promise.unit == "tomorrow_morning" and promise.at == MONDAY + timedelta(days=1, hours=12)
    assert promise.words("es") == "mañana por la mañana" and promise.words("en") == "tomorrow morning"
    # Friday evening carries over the weekend: whole days, never "tomorrow" on a Saturday nobody works.
    friday = MONDAY + timedelta(days=4, hours=16, minutes=55)
    weekend = forecast(now=friday, ahead=4, lane_name="complaint", shifts=OFFICE)
    assert weekend.unit == "days" and weekend.at >= MONDAY + timedelta(days=7, hours=9, minutes=32)
    assert weekend.words("en") == "within 3 days" and weekend.words("es") == "en menos de 3 días"


def test_the_floor_is_never_undercut_and_within_it_says_quarter_hours() -> None:
    now = MONDAY + timedelta(hours=10)
    quick = HandlingRates(handle_s={"crisis": 60.0}, answers={"crisis": 40})
    promise = forecast(now=now, ahead=0, lane_name="crisis", rates=quick)
    assert promise.at == now + timedelta(minutes=15) and promise.words("en") == "within 15 minutes"
    higher = forecast(now=now, ahead=0, lane_name="crisis", rates=quick, rules=PromiseRules(floor_s=40 * 60))
    assert higher.words("es") == "en menos de 45 minutos"


@given(
    ahead=st.integers(0, 400),
    handle=st.floats(60, 7200),
    margin=st.floats(0, 3),
    floor=st.floats(60, 4 * 3600),
    minute=st.integers(0, 7 * 24 * 60),
    shifts=st.booleans(),
)
def test_every_promise_is_at_least_the_floor_and_the_forecast_and_grammatical(
    ahead: int, handle: float, margin: float, floor: float, minute: int, shifts: bool
) -> None:
    now = MONDAY + timedelta(minutes=minute)
    rates = HandlingRates(handle_s={"other": handle})
    promise = forecast(now=now, ahead=ahead, lane_name="other", shifts=OFFICE if shifts else (), rates=rates,
                       rules=PromiseRules(floor_s=floor, margin=margin))  # fmt: skip
    assert promise.at >= now + timedelta(seconds=floor) - timedelta(microseconds=1)
    assert promise.at >= datetime.fromisoformat(promise.basis["forecast_at"])
    for lang in ("es", "en"):
        words = promise.words(lang)
        singular_as_plural = (" 1 minutos", " 1 minutes", " 1 horas", " 1 hours", " 1 días", " 1 days")
        assert not any(bad in words for bad in singular_as_plural)
        assert not any(f" {n} minuto " in words + " " or f" {n} hora " in words + " " for n in range(2, 100))


def test_durations_say_plurals_right_in_both_languages() -> None:
    assert [duration_words(s, "es") for s in (30, 60, 120, 3600, 7200, 3 * 86400)] == [
        "1 minuto", "1 minuto", "2 minutos", "1 hora", "2 horas", "3 días"]  # fmt: skip
    assert [duration_words(s, "en") for s in (60, 120, 3600, 5400)] == ["1 minute", "2 minutes", "1 hour", "2 hours"]


def test_the_handling_time_is_measured_from_the_answers_sent(session: Session) -> None:
    agent = staff(session, "Ana Ruiz")
    start = utcnow() - timedelta(hours=2)
    for i in range(10):  # ten answers, six minutes of work each: a queue at first, then one post at a time
        post = scored_post(session, complaint=0.9)
        created = start if i < 5 else start + timedelta(minutes=60 + 20 * i)
        sent = start + timedelta(minutes=6 * (i + 1)) if i < 5 else created + timedelta(minutes=6)
        session.add(Reply(post_id=post.id, kind=ReplyKind.ANSWER, state=ReplyState.SENT, text="ok",  # type: ignore[arg-type]
                          idempotency_key=f"k{i}", author_staff_id=agent.id, created_at=created,
                          sent_at=sent))  # fmt: skip
    session.commit()
    rates = HandlingRates.load(session, now=utcnow())
    assert rates.answers == {"complaint": 10}
    # Neither the wait in the queue nor the idle time between posts counts; smoothed toward the default.
    assert rates.seconds("complaint") == pytest.approx((10 * 360 + 5 * DEFAULT_HANDLE_S) / 15)
    assert rates.seconds("other") == DEFAULT_HANDLE_S


def _sent_answers(session: Session, n: int, *, start: int, minutes: float) -> None:
    agent = staff(session, f"Agent {start}")
    began = utcnow() - timedelta(minutes=minutes * (n + 1))  # every answer sent in the past, within the day
    for i in range(n):
        post = scored_post(session, complaint=0.9)
        session.add(Reply(post_id=post.id, kind=ReplyKind.ANSWER, state=ReplyState.SENT, text="ok",  # type: ignore[arg-type]
                          idempotency_key=f"r{start + i}", author_staff_id=agent.id, created_at=began,
                          sent_at=began + timedelta(minutes=minutes * (i + 1))))  # fmt: skip
    session.commit()


def test_a_busy_desks_rates_are_reused_for_half_a_minute(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweeps' measurement (issue 17): reused by the next sweeps' sessions for REUSE_S, then read afresh."""
    from sqlalchemy import event

    from responder import forecast as forecast_module

    reads: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: reads.append(a[2]) if "ORDER BY" in a[2] else None)
    with Session(engine, expire_on_commit=False) as session:
        _sent_answers(session, REUSE_FROM - 1, start=0, minutes=0.5)
        now = utcnow()
        small = HandlingRates.recent(session, now=now)
        assert HandlingRates.recent(session, now=now) is not small  # a small desk is measured on every sweep
        assert len(reads) == 2
        _sent_answers(session, 2, start=10_000, minutes=0.5)
        first = HandlingRates.recent(session, now=now)
        assert first.answers == HandlingRates.load(session, now=now).answers == {"complaint": REUSE_FROM + 1}
        _sent_answers(session, 20, start=20_000, minutes=30)  # slow answers: they change the measurement
    reads.clear()
    with Session(engine) as sweep:  # each sweep opens its own session: the reuse is per database
        assert HandlingRates.recent(sweep, now=now + timedelta(seconds=5)) is first
        assert reads == []  # reused: the 5,000-answer read did not run
        later = HandlingRates.recent(sweep, now=now + timedelta(seconds=REUSE_S + 1))  # the forecast's clock moved on
        assert reads and later is not first
        assert later.answers["complaint"] == REUSE_FROM + 21
        assert later.seconds("complaint") > first.seconds("complaint")
        reads.clear()
        assert HandlingRates.recent(sweep, now=now) is not later and reads  # a clock set back measures afresh
        kept = HandlingRates.recent(sweep, now=now)
        real = forecast_module.time.monotonic()
        monkeypatch.setattr(forecast_module.time, "monotonic", lambda: real + REUSE_S + 1)
        reads.clear()
        assert HandlingRates.recent(sweep, now=now) is not kept and reads  # half a minute passed on this machine


def test_a_session_on_one_connection_never_shares_its_measurement(engine: Engine) -> None:
    with engine.connect() as connection:
        outer = connection.begin()  # the usual test pattern: everything inside one transaction, rolled back
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            _sent_answers(session, REUSE_FROM + 5, start=0, minutes=0.5)
            on_connection = HandlingRates.recent(session, now=utcnow())
            assert on_connection.answers == {"complaint": REUSE_FROM + 5}
            assert HandlingRates.recent(session, now=utcnow()) is not on_connection
        outer.rollback()
    with Session(engine) as session:  # nothing the connection's transaction measured is handed to a sweep
        assert HandlingRates.recent(session, now=utcnow()) is not on_connection


def test_reused_rates_are_never_shared_between_databases(tmp_path: Path) -> None:
    from sqlmodel import SQLModel

    from ground.db import make_engine

    measured = []
    for name in ("a", "b"):
        eng = make_engine(f"sqlite:///{tmp_path / name}.db")
        SQLModel.metadata.create_all(eng)
        with Session(eng, expire_on_commit=False) as session:
            _sent_answers(session, REUSE_FROM + (0 if name == "a" else 40), start=0, minutes=0.5 if name == "a" else 20)
            measured.append(HandlingRates.recent(session, now=utcnow()))
        eng.dispose()
    assert measured[0] is not measured[1] and measured[0].seconds("complaint") != measured[1].seconds("complaint")


def test_the_queue_ahead_is_the_owners_more_urgent_or_older_open_posts(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Ana Ruiz", capacity=50)
        posts = [scored_post(session, urgency=u, age_s=600 - i) for i, u in enumerate((50, 50, 90, 10))]
        assign_pending(session)
        session.commit()
        for post in posts:
            session.refresh(post)
        assert [queue_ahead(session, p) for p in posts] == [1, 2, 0, 3]


def test_the_queues_ahead_of_many_posts_are_counted_in_one_statement_like_one_at_a_time(engine: Engine) -> None:
    """The care sweep's acknowledgements count all their queues at once (issue 17): same figures, one query."""
    from sqlalchemy import event

    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Ana Ruiz", capacity=50)
        staff(session, "Beto Gil", capacity=50)
        posts = [scored_post(session, urgency=u, age_s=900 - i) for i, u in enumerate((50, 50, 90, 10, 50, 70, 0, 90))]
        assign_pending(session)
        session.commit()
        for post in posts:
            session.refresh(post)
        one_by_one = {p.id: queue_ahead(session, p) for p in posts}
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        together = queues_ahead(session, posts)
        event.remove(engine, "before_cursor_execute", listener)
        assert together == one_by_one and len(statements) == 1
        assert len({p.assignee_id for p in posts}) == 2 and max(together.values()) > 0
