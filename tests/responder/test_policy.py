"""The assignment policy, example by example (its properties are in tests/test_responder_policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from responder.policy import StaffSlot, WorkItem, choose_assignee, parse_codes

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
