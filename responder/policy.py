"""The assignment policy: a pure function from one post and the team's state to one staff member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Languages we route on; anything else ("other") may go to anyone on the channel.
ROUTED_LANGUAGES = frozenset({"es", "en"})


@dataclass(frozen=True, slots=True)
class StaffSlot:
    """One staff member as the policy sees them."""

    id: int
    languages: frozenset[str]
    channels: frozenset[str]
    senior: bool
    capacity: int
    load: int
    available: bool = True
    last_assigned_at: datetime | None = None
    skills: frozenset[str] = frozenset()
    on_shift: bool = True


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One post as the policy sees it."""

    post_id: int
    channel: str  # "public" or "dm"
    language: str
    needs_senior: bool = False
    skills: frozenset[str] = frozenset()


def parse_codes(value: str) -> frozenset[str]:
    """Parse a comma-separated list such as ``"es, en"`` into a set of codes."""
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def eligible(item: WorkItem, slot: StaffSlot) -> bool:
    """Tell whether ``slot`` may take ``item`` now."""
    if not slot.available or not slot.on_shift or slot.load >= slot.capacity:
        return False
    if not item.skills <= slot.skills:
        return False
    if item.channel not in slot.channels:
        return False
    if item.language in ROUTED_LANGUAGES and item.language not in slot.languages:
        return False
    return slot.senior or not item.needs_senior


def rank(slot: StaffSlot) -> tuple[int, bool, float, int]:
    """Order staff for the choice: least loaded, then never or least recently assigned, then id."""
    # Never-assigned people come first among equals; the id keeps the choice deterministic.
    ts = slot.last_assigned_at.timestamp() if slot.last_assigned_at else float("-inf")
    return (slot.load, slot.last_assigned_at is not None, ts, slot.id)


def choose_assignee(
    item: WorkItem, staff: list[StaffSlot], *, exclude: frozenset[int] = frozenset()
) -> StaffSlot | None:
    """Pick the least-loaded eligible staff member; ties go to the least recently assigned."""
    candidates = [s for s in staff if s.id not in exclude and eligible(item, s)]
    if not candidates:
        return None
    return min(candidates, key=rank)
