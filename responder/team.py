"""The team as the policy sees it now: availability, shifts, skills and the load of open posts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlmodel import Session, col

from models.tables import Post, PostStatus, Shift, Staff
from responder.policy import StaffSlot, parse_codes
from responder.sla_targets import Window, is_open


@dataclass(slots=True)
class Team:
    """Staff rows and their policy slots, updated as a sweep hands out work."""

    staff: dict[int, Staff]
    slots: dict[int, StaffSlot]

    def take(self, staff_id: int, at: datetime) -> Staff:
        """Count one more open post for ``staff_id`` and remember when they were last given one."""
        slot = self.slots[staff_id]
        self.slots[staff_id] = replace(slot, load=slot.load + 1, last_assigned_at=at)
        member = self.staff[staff_id]
        member.last_assigned_at = at
        return member

    def release(self, staff_id: int) -> None:
        """Count one fewer open post for ``staff_id``."""
        slot = self.slots[staff_id]
        self.slots[staff_id] = replace(slot, load=max(0, slot.load - 1))

    def all_slots(self) -> list[StaffSlot]:
        """Return the slots, for the policy."""
        return list(self.slots.values())


def shift_windows(session: Session) -> dict[int, list[Window]]:
    """Return each staff member's weekly shift windows (absent: always on shift)."""
    windows: dict[int, list[Window]] = defaultdict(list)
    for s in session.execute(select(Shift)).scalars():
        windows[s.staff_id].append(Window(s.weekday, s.start_minute, s.end_minute, s.timezone))
    return dict(windows)


def open_loads(session: Session) -> dict[int, int]:
    """Count each staff member's open (assigned, unanswered) conversations; a post outside any counts alone."""
    # Three messages of one conversation are one piece of work: its later messages join its owner.
    work = func.coalesce(col(Post.conversation_ref), -col(Post.id))
    rows = session.execute(
        select(col(Post.assignee_id), func.count(func.distinct(work)))
        .where(col(Post.status) == PostStatus.ASSIGNED, col(Post.assignee_id).is_not(None))
        .group_by(col(Post.assignee_id))
    ).all()
    return {int(sid): int(n) for sid, n in rows}


def lock_team(session: Session) -> None:
    """Take the team lock on PostgreSQL: every staff row, in id order; the first lock of every sweep.

    The assignment, SLA and care sweeps take it before they read a post they decide on or write anything, so
    they run one at a time and never wait for a post row while holding one (docs/design.md, "Lock order").
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_locked(select(col(Staff.id)).order_by(col(Staff.id)))).all()


def _locked(query: Select[Any]) -> Select[Any]:
    # Claims of posts are SKIP LOCKED, but capacity is shared: the team rows serialise the decisions of
    # concurrent sweeps, so two workers never both fill the last slot of the same person.
    # FOR NO KEY UPDATE, not FOR UPDATE: it still serialises the sweeps, but leaves alone the KEY SHARE
    # locks that foreign-key checks take on staff rows. With FOR UPDATE, an approval or the outbox
    # recording a sent reply (holding the post/reply rows, checking approved_by_id) deadlocked with a
    # sweep (holding the staff rows, waiting for those posts): the approval failed, and the sent reply
    # stayed in "sending" until its lease ran out (found by the fault campaign).
    return query.with_for_update(of=Staff, key_share=True)


def load_team(session: Session, *, now: datetime, lock: bool = False) -> Team:
    """Read the team; with ``lock`` on PostgreSQL, hold the staff rows (the team lock) so loads stay true."""
    query = select(Staff).order_by(col(Staff.id))
    if lock and session.get_bind().dialect.name == "postgresql":
        query = _locked(query)
    members = list(session.execute(query).scalars())
    loads = open_loads(session)  # counted after the lock: sees every sweep committed before ours
    shifts = shift_windows(session)
    slots: dict[int, StaffSlot] = {}
    for s in members:
        assert s.id is not None
        slots[s.id] = StaffSlot(
            id=s.id,
            languages=parse_codes(s.languages),
            channels=parse_codes(s.channels),
            senior=s.senior,
            capacity=s.capacity,
            load=loads.get(s.id, 0),
            available=s.available,
            last_assigned_at=s.last_assigned_at,
            skills=parse_codes(s.skills),
            on_shift=is_open(now, shifts.get(s.id, [])),
        )
    return Team(staff={s.id: s for s in members if s.id is not None}, slots=slots)
