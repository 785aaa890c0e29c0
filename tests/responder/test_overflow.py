"""A full team: the overflow policy decides who (if anyone) takes new posts, and the managers are told."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from models.alerts import TEAM_FULL, list_alerts
from models.tables import Assignment, Post, utcnow
from responder.assign import assign_pending
from responder.overflow import (
    HOLD,
    LEAST_LOADED,
    MANAGERS,
    choose_overflow,
    overflow_policy,
    set_overflow_policy,
    team_capacity,
    unassigned_backlog,
)
from responder.permissions import NotAllowed
from responder.policy import StaffSlot, WorkItem
from tests.support.factories import scored_post, staff


def _owner(session: Session, post: Post) -> int | None:
    session.refresh(post)
    return post.assignee_id


def _full_team(session: Session) -> tuple[int, int, int]:
    """Two agents and a manager, each with capacity 1 and one post already: the whole team is full."""
    ana = staff(session, "Ana Full", capacity=1)
    ben = staff(session, "Ben Full", capacity=1)
    boss = staff(session, "Mara Boss", role="manager", capacity=1)
    for _ in range(3):
        scored_post(session, urgency=90)
    assert assign_pending(session).assigned == 3
    session.commit()
    assert ana.id and ben.id and boss.id
    return ana.id, ben.id, boss.id


def test_hold_is_the_default_posts_wait_oldest_first_and_the_managers_hear_it_once(session: Session) -> None:
    _, _, boss = _full_team(session)
    assert overflow_policy(session) == HOLD
    older = scored_post(session, age_s=3600, text="older")
    newer = scored_post(session, age_s=60, text="newer")
    result = assign_pending(session)
    session.commit()
    assert result.assigned == 0 and result.team_full and sorted(result.held) == sorted([older.id, newer.id])
    assert _owner(session, older) is None and _owner(session, newer) is None
    assert [p.id for p in unassigned_backlog(session)] == [older.id, newer.id]
    room = team_capacity(session, now=utcnow())
    assert room.full and room.unassigned == 2 and room.people == 3 and room.load == 3 and room.capacity == 3
    assign_pending(session)  # a second sweep in the same hour says nothing new
    session.commit()
    assert [a.kind for a in list_alerts(session, staff_id=boss, kinds=(TEAM_FULL,))] == [TEAM_FULL]


@pytest.mark.parametrize("policy", [LEAST_LOADED, MANAGERS])
def test_overflow_policies_assign_over_capacity(session: Session, policy: str) -> None:
    ana, ben, boss = _full_team(session)
    admin = staff(session, "Alex Admin", role="admin", available=False)
    set_overflow_policy(session, actor=admin, policy=policy)
    posts = [scored_post(session, urgency=40) for _ in range(3)]
    result = assign_pending(session)
    session.commit()
    assert result.team_full and result.assigned == 3 and sorted(result.overflowed) == sorted(p.id for p in posts)
    owners = [_owner(session, p) for p in posts]
    if policy == MANAGERS:
        assert owners == [boss, boss, boss]
    else:
        # Least loaded first: each of the three takes one more (never the unavailable admin).
        assert sorted(owners) == sorted([ana, ben, boss])  # type: ignore[type-var]
    reasons = set(
        session.execute(select(col(Assignment.reason)).where(col(Assignment.post_id) == posts[0].id)).scalars()
    )
    assert reasons == {f"overflow: {policy}"}
    assert unassigned_backlog(session) == []


def test_only_admins_choose_the_policy_and_unknown_ones_are_refused(session: Session) -> None:
    agent = staff(session, "Plain Agent")
    admin = staff(session, "Alex Admin", role="admin")
    with pytest.raises(NotAllowed):
        set_overflow_policy(session, actor=agent, policy=MANAGERS)
    with pytest.raises(ValueError, match="unknown overflow policy"):
        set_overflow_policy(session, actor=admin, policy="everyone")
    assert overflow_policy(session) == HOLD


def test_overflow_keeps_every_rule_but_capacity() -> None:
    item = WorkItem(post_id=1, channel="dm", language="es", needs_senior=True)
    slots = [
        StaffSlot(id=1, languages=frozenset({"es"}), channels=frozenset({"dm"}), senior=False, capacity=1, load=1),
        StaffSlot(id=2, languages=frozenset({"en"}), channels=frozenset({"dm"}), senior=True, capacity=1, load=1),
        StaffSlot(id=3, languages=frozenset({"es"}), channels=frozenset({"dm"}), senior=True, capacity=1, load=5),
        StaffSlot(id=4, languages=frozenset({"es"}), channels=frozenset({"dm"}), senior=True, capacity=1, load=1,
                  available=False),
    ]  # fmt: skip
    assert choose_overflow(item, slots, policy=HOLD, managers=frozenset()) is None
    chosen = choose_overflow(item, slots, policy=LEAST_LOADED, managers=frozenset())
    assert chosen is not None and chosen.id == 3  # the only senior Spanish speaker who is available
    assert choose_overflow(item, slots, policy=MANAGERS, managers=frozenset({1, 2})) is None
