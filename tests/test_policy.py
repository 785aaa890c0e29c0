"""The assignment policy, example by example and as properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from responder.policy import StaffSlot, WorkItem, choose_assignee, eligible, parse_codes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def slot(i: int, **kw: object) -> StaffSlot:
    base: dict[str, object] = {
        "id": i,
        "languages": frozenset({"es", "en"}),
        "channels": frozenset({"public", "dm"}),
        "senior": False,
        "capacity": 10,
        "load": 0,
    }
    base.update(kw)
    return StaffSlot(**base)  # type: ignore[arg-type]


def test_parse_codes_ignores_blanks_and_case() -> None:
    assert parse_codes(" ES, en,, ") == frozenset({"es", "en"})
    assert parse_codes("") == frozenset()


def test_least_loaded_wins_and_ties_go_to_least_recently_assigned() -> None:
    item = WorkItem(post_id=1, channel="public", language="en")
    staff = [
        slot(1, load=3),
        slot(2, load=1, last_assigned_at=T0),
        slot(3, load=1, last_assigned_at=T0 - timedelta(hours=1)),
    ]
    assert choose_assignee(item, staff).id == 3  # type: ignore[union-attr]
    staff.append(slot(4, load=1))  # never assigned: first among equals
    assert choose_assignee(item, staff).id == 4  # type: ignore[union-attr]


def test_language_channel_capacity_availability_and_seniority_are_respected() -> None:
    es_dm = WorkItem(post_id=1, channel="dm", language="es")
    assert choose_assignee(es_dm, [slot(1, languages=frozenset({"en"}))]) is None
    assert choose_assignee(es_dm, [slot(1, channels=frozenset({"public"}))]) is None
    assert choose_assignee(es_dm, [slot(1, load=10)]) is None
    assert choose_assignee(es_dm, [slot(1, available=False)]) is None
    crisis = WorkItem(post_id=2, channel="public", language="en", needs_senior=True)
    assert choose_assignee(crisis, [slot(1), slot(2, senior=True, load=5)]).id == 2  # type: ignore[union-attr]
    # A language we do not route on may go to anyone on the channel.
    other = WorkItem(post_id=3, channel="public", language="other")
    assert choose_assignee(other, [slot(1, languages=frozenset({"en"}))]) is not None


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
)
items = st.builds(
    WorkItem,
    post_id=st.integers(1, 10),
    channel=st.sampled_from(["public", "dm"]),
    language=st.sampled_from(["es", "en", "other"]),
    needs_senior=st.booleans(),
)


@given(items, st.lists(slots, max_size=12, unique_by=lambda s: s.id))
def test_choice_is_eligible_and_least_loaded(item: WorkItem, staff: list[StaffSlot]) -> None:
    chosen = choose_assignee(item, staff)
    ok = [s for s in staff if eligible(item, s)]
    if not ok:
        assert chosen is None
        return
    assert chosen is not None and eligible(item, chosen)
    assert chosen.load < chosen.capacity
    assert chosen.load == min(s.load for s in ok)


@given(
    st.lists(items, min_size=1, max_size=40),
    st.lists(slots, min_size=1, max_size=8, unique_by=lambda s: s.id),
)
def test_repeated_assignment_never_exceeds_capacity(work: list[WorkItem], staff: list[StaffSlot]) -> None:
    from dataclasses import replace

    team = {s.id: s for s in staff}
    start = {s.id: s.load for s in staff}
    for item in work:
        chosen = choose_assignee(item, list(team.values()))
        if chosen is not None:
            team[chosen.id] = replace(chosen, load=chosen.load + 1)
    for sid, s in team.items():
        assert s.load <= max(s.capacity, start[sid])
