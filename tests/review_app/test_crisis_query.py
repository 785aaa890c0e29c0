"""The crisis view's query on both backends: open first, the last week's closed ones after, filters in SQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import Post, PostKind, PostStatus, Score, utcnow
from review_app.crisis_data import STATE_CLOSED, STATE_OPEN, CrisisFilters, fetch_crisis
from review_app.queries import UNASSIGNED
from tests.support.factories import scored_post, staff


def _crisis(s: Session, kinds: list[str], *, urgency: int, **kw: object) -> Post:
    post = scored_post(s, crisis=True, urgency=urgency, text=f"crisis {urgency}", **kw)  # type: ignore[arg-type]
    score = s.execute(select(Score).where(col(Score.post_id) == post.id)).scalar_one()
    score.reasons = [f"crisis: {k}" for k in kinds] + ["dm"]
    s.add(score)
    s.commit()
    return post


def test_crisis_posts_open_first_then_recent_closed_and_each_filter_narrows_in_sql(session: Session) -> None:
    agent = staff(session, "Ana Agent", role="agent", available=False)
    other = staff(session, "Olga Agent", role="agent", available=False)
    legal = _crisis(session, ["legal threat"], urgency=80)
    leak = _crisis(session, ["data breach", "legal threat"], urgency=95, network="facebook")
    closed = _crisis(session, ["health risk"], urgency=99)
    old = _crisis(session, ["health risk"], urgency=99)
    their_dm = _crisis(session, ["safety threat"], urgency=70, kind=PostKind.DM)
    scored_post(session, urgency=100, text="not a crisis")
    now = utcnow()
    for post, when in ((closed, now - timedelta(hours=2)), (old, now - timedelta(days=9))):
        post.status, post.resolved_at = PostStatus.REPLIED, when
        session.add(post)
    their_dm.assignee_id, their_dm.status = other.id, PostStatus.ASSIGNED
    session.add(their_dm)
    session.commit()

    rows, total = fetch_crisis(session, filters=CrisisFilters())
    assert [r.post_id for r in rows] == [leak.id, legal.id, their_dm.id, closed.id] and total == 4
    assert rows[0].crisis_kinds == ["data breach", "legal threat"] and rows[0].due_at > rows[0].created_at
    assert [r.is_open for r in rows] == [True, True, True, False]

    def ids(**kw: object) -> list[int]:
        return [r.post_id for r in fetch_crisis(session, filters=CrisisFilters(**kw))[0]]  # type: ignore[arg-type]

    assert ids(kinds=("legal threat",)) == [leak.id, legal.id]
    assert ids(networks=("facebook",)) == [leak.id]
    assert ids(state=STATE_OPEN) == [leak.id, legal.id, their_dm.id]
    assert ids(state=STATE_CLOSED) == [closed.id]
    assert ids(assignee_id=UNASSIGNED) == [leak.id, legal.id, closed.id]
    # An agent does not see a DM given to someone else (as in the queue).
    assert their_dm.id not in ids(dms_of=agent.id)
    rows, total = fetch_crisis(session, filters=CrisisFilters(), limit=2, offset=2)
    assert [r.post_id for r in rows] == [their_dm.id, closed.id] and total == 4
