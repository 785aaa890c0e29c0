"""Properties of the assignment policy: skills, shifts, seniority, fairness and order independence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from responder.policy import StaffSlot, WorkItem, choose_assignee, eligible, rank

SKILLS = ["billing", "legal", "tech"]

slots = st.builds(
    StaffSlot,
    id=st.integers(1, 1000),
    languages=st.sets(st.sampled_from(["es", "en"]), max_size=2).map(frozenset),
    channels=st.sets(st.sampled_from(["public", "dm"]), max_size=2).map(frozenset),
    senior=st.booleans(),
    capacity=st.integers(0, 5),
    load=st.integers(0, 6),
    available=st.booleans(),
    last_assigned_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    skills=st.sets(st.sampled_from(SKILLS)).map(frozenset),
    on_shift=st.booleans(),
)
items = st.builds(
    WorkItem,
    post_id=st.integers(1, 10),
    channel=st.sampled_from(["public", "dm"]),
    language=st.sampled_from(["es", "en", "other"]),
    needs_senior=st.booleans(),
    skills=st.sets(st.sampled_from(SKILLS), max_size=2).map(frozenset),
)
teams = st.lists(slots, max_size=12, unique_by=lambda s: s.id)


@given(items, teams)
def test_chosen_person_meets_every_rule(item: WorkItem, staff: list[StaffSlot]) -> None:
    chosen = choose_assignee(item, staff)
    if chosen is None:
        assert not any(eligible(item, s) for s in staff)
        return
    assert chosen.available and chosen.on_shift and chosen.load < chosen.capacity
    assert item.channel in chosen.channels and item.skills <= chosen.skills
    assert chosen.senior or not item.needs_senior
    assert item.language not in ("es", "en") or item.language in chosen.languages


@given(items, teams)
def test_least_loaded_then_least_recently_assigned(item: WorkItem, staff: list[StaffSlot]) -> None:
    chosen = choose_assignee(item, staff)
    for other in (s for s in staff if eligible(item, s)):
        assert chosen is not None and rank(chosen) <= rank(other)
        if other.load == chosen.load and other.last_assigned_at is None:
            assert chosen.last_assigned_at is None  # never-assigned people go first among equals
        if other.load == chosen.load and chosen.last_assigned_at and other.last_assigned_at:
            assert chosen.last_assigned_at <= other.last_assigned_at


@given(items, teams, st.randoms())
def test_the_choice_does_not_depend_on_the_order_of_the_team(
    item: WorkItem, staff: list[StaffSlot], rnd: object
) -> None:
    shuffled = list(staff)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert choose_assignee(item, staff) == choose_assignee(item, shuffled)


@given(items, teams)
def test_excluded_people_are_never_chosen(item: WorkItem, staff: list[StaffSlot]) -> None:
    excluded = frozenset(s.id for s in staff[::2])
    chosen = choose_assignee(item, staff, exclude=excluded)
    assert chosen is None or chosen.id not in excluded


@given(
    st.lists(items, min_size=1, max_size=40),
    st.lists(slots, min_size=1, max_size=8, unique_by=lambda s: s.id),
)
def test_repeated_assignment_never_exceeds_capacity(work: list[WorkItem], staff: list[StaffSlot]) -> None:
    team = {s.id: s for s in staff}
    start = {s.id: s.load for s in staff}
    for item in work:
        chosen = choose_assignee(item, list(team.values()))
        if chosen is not None:
            team[chosen.id] = replace(chosen, load=chosen.load + 1)
    for sid, s in team.items():
        assert s.load <= max(s.capacity, start[sid])
