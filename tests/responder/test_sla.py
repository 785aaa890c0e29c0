"""SLA policies, business hours, breaches and escalation, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from models.alerts import unread_alerts
from models.tables import BusinessHours, Post, SlaEvent, SlaPolicy, utcnow
from responder.assign import assign_pending
from responder.sla_sweep import sla_sweep
from responder.sla_targets import MAX_S, SlaBook, Window, add_business_seconds, is_open, lane, sla_seconds
from tests.support.factories import scored_post, staff

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
WEEKDAYS_9_TO_17 = [Window(d, 9 * 60, 17 * 60) for d in range(5)]


def test_default_targets() -> None:
    assert sla_seconds(crisis=True, is_dm=False, complaint=0.1) == 15 * 60
    assert sla_seconds(crisis=False, is_dm=False, complaint=0.9) == 60 * 60
    assert sla_seconds(crisis=False, is_dm=True, complaint=0.9) == 4 * 60 * 60
    assert lane(crisis=False, complaint=0.2) == "other"


def test_business_hours_skip_nights_and_weekends() -> None:
    friday_16 = MONDAY_9 + timedelta(days=4, hours=7)
    # One business hour from Friday 16:00 ends at 17:00; a second one ends on Monday at 10:00.
    assert add_business_seconds(friday_16, 3600, WEEKDAYS_9_TO_17) == friday_16 + timedelta(hours=1)
    assert add_business_seconds(friday_16, 2 * 3600, WEEKDAYS_9_TO_17) == MONDAY_9 + timedelta(days=7, hours=1)
    saturday = MONDAY_9 + timedelta(days=5)
    assert not is_open(saturday, WEEKDAYS_9_TO_17) and is_open(MONDAY_9, WEEKDAYS_9_TO_17)


def test_overnight_windows_run_past_midnight() -> None:
    night = [Window(0, 22 * 60, 6 * 60)]  # Monday 22:00 → Tuesday 06:00
    assert is_open(MONDAY_9 + timedelta(hours=16), night)  # Tuesday 01:00
    assert not is_open(MONDAY_9, night)


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
    seconds=st.integers(1, MAX_S),
)
def test_business_due_is_never_before_wall_clock_due(start: datetime, seconds: int) -> None:
    due = add_business_seconds(start, seconds, WEEKDAYS_9_TO_17)
    assert due >= start + timedelta(seconds=seconds)


def test_policies_from_the_table_and_the_24_hour_cap(session: Session) -> None:
    session.add(SlaPolicy(channel="public", lane="complaint", seconds=30 * 60))
    session.add(SlaPolicy(channel="dm", lane="other", seconds=3 * 24 * 3600))
    session.add(SlaPolicy(channel="public", lane="other", seconds=8 * 3600, business_hours=True))
    session.add_all(BusinessHours(weekday=w.weekday, start_minute=w.start_minute, end_minute=w.end_minute)
                    for w in WEEKDAYS_9_TO_17)  # fmt: skip
    session.commit()
    book = SlaBook.load(session)
    assert book.due(MONDAY_9, "public", "complaint") == MONDAY_9 + timedelta(minutes=30)
    assert book.due(MONDAY_9, "dm", "other") == MONDAY_9 + timedelta(hours=24)  # never more than 24 h
    assert book.due(MONDAY_9, "public", "crisis") == MONDAY_9 + timedelta(minutes=15)  # default kept
    # Eight business hours from Friday 12:00: five on Friday, three on Monday — but capped at 24 h.
    friday_noon = MONDAY_9 + timedelta(days=4, hours=3)
    assert book.due(friday_noon, "public", "other") == friday_noon + timedelta(hours=24)
    assert book.due(MONDAY_9, "public", "other") == MONDAY_9 + timedelta(hours=8)


def test_the_clock_starts_at_the_posts_own_time(session: Session) -> None:
    staff(session, "Ana Ruiz")
    post = scored_post(session, complaint=0.9, age_s=2 * 3600)  # ingested now, written two hours ago
    assign_pending(session)
    session.commit()
    session.refresh(post)
    assert post.due_at is not None
    assert abs((post.due_at.replace(tzinfo=UTC) - (post.created_at.replace(tzinfo=UTC) + timedelta(hours=1)))
               .total_seconds()) < 1  # fmt: skip
    result = sla_sweep(session)
    session.commit()
    assert result.breached == [post.id]


def test_breach_is_recorded_once_escalates_to_a_senior_and_alerts_the_manager(session: Session) -> None:
    boss = staff(session, "Boss Lady", role="manager", channels="")
    junior = staff(session, "Junior Agent")
    post = scored_post(session, complaint=0.9, age_s=30 * 60)
    assign_pending(session)
    session.commit()
    session.refresh(post)
    assert post.assignee_id == junior.id
    senior = staff(session, "Senior Agent", senior=True)
    later = utcnow() + timedelta(hours=1)
    first = sla_sweep(session, now=later)
    second = sla_sweep(session, now=later + timedelta(minutes=5))
    session.commit()
    assert first.breached == [post.id] and second.breached == []
    events = list(session.execute(select(SlaEvent).where(col(SlaEvent.kind) == "breached")).scalars())
    assert [e.post_id for e in events] == [post.id]
    session.refresh(post)
    assert post.assignee_id == senior.id and post.escalated_at is not None
    assert [a.kind for a in unread_alerts(session, staff_id=boss.id)] == ["breach"]  # type: ignore[arg-type]
    assert [a.kind for a in unread_alerts(session, staff_id=senior.id)] == ["escalation"]  # type: ignore[arg-type]


def test_a_held_post_that_breaches_still_alerts(session: Session) -> None:
    boss = staff(session, "Boss Lady", role="manager", channels="")
    post = scored_post(session, crisis=True, age_s=3600)
    assign_pending(session)
    sla_sweep(session)
    session.commit()
    kinds = sorted(a.kind for a in unread_alerts(session, staff_id=boss.id))  # type: ignore[arg-type]
    assert kinds == ["breach", "holding"]
    assert session.get(Post, post.id).escalated_at is not None  # type: ignore[union-attr]


def test_the_sweep_reads_only_what_it_decides_on_and_the_rest_when_a_post_moves(session: Session) -> None:
    """Every open post is read every tick: not its raw payload, text or reasons (only a moved post's)."""
    from sqlalchemy import inspect

    from responder.sla_sweep import _open_posts

    ana = staff(session, "Ana Ruiz")
    post = scored_post(session, complaint=0.9)
    post.raw = {"id": "1", "text": "x" * 1000}
    session.add(post)
    assign_pending(session)
    session.commit()
    session.expunge_all()
    items = _open_posts(session)
    assert [i.post.id for i in items] == [post.id]
    assert {"raw", "text", "url"} <= inspect(items[0].post).unloaded
    assert "reasons" in inspect(items[0].score).unloaded
    # Ana leaves: her post moves to Bea, and the new suggested reply still names the customer.
    bea = staff(session, "Bea Soto")
    ana_row = session.get(type(ana), ana.id)
    assert ana_row is not None
    ana_row.available = False
    session.commit()
    result = sla_sweep(session)
    session.commit()
    assert result.redistributed == [post.id]
    moved = session.get(Post, post.id)
    assert moved is not None and moved.assignee_id == bea.id
