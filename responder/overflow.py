"""A full team: when nobody with room can take a post, the admin's overflow policy decides what happens.

``hold`` leaves it unassigned in the holding queue (the default: nobody is given more than their capacity
without an admin saying so); ``least_loaded`` gives it over capacity to the least loaded person who could
otherwise take it; ``managers`` gives it over capacity to a manager (or admin) who could take it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.audit import audit
from models.desk_settings import get_setting, set_setting
from models.tables import Post, PostStatus, Role, Staff
from responder.permissions import Action, require
from responder.policy import StaffSlot, WorkItem, eligible, rank
from responder.team import Team, load_team

OVERFLOW_KEY = "overflow_policy"
HOLD = "hold"
LEAST_LOADED = "least_loaded"
MANAGERS = "managers"
POLICIES = (HOLD, LEAST_LOADED, MANAGERS)


def overflow_policy(session: Session) -> str:
    """The overflow policy in force (``hold`` unless an admin chose another)."""
    value = get_setting(session, OVERFLOW_KEY, HOLD)
    return value if value in POLICIES else HOLD


def set_overflow_policy(session: Session, *, actor: Staff, policy: str) -> None:
    """Choose what happens to new posts when the whole team is at capacity (admins only)."""
    require(actor, Action.ADMIN)
    if policy not in POLICIES:
        raise ValueError(f"unknown overflow policy {policy[:40]!r}: one of {', '.join(POLICIES)}")
    set_setting(session, key=OVERFLOW_KEY, value=policy, by=f"staff:{actor.id}")
    audit(session, actor=f"staff:{actor.id}", action="overflow_policy_set", policy=policy)
    session.commit()


def has_room(slot: StaffSlot) -> bool:
    """Whether ``slot`` can take one more post now (available, on shift, under capacity)."""
    return slot.available and slot.on_shift and slot.load < slot.capacity


def choose_overflow(
    item: WorkItem, slots: list[StaffSlot], *, policy: str, managers: frozenset[int]
) -> StaffSlot | None:
    """Pick who takes ``item`` over capacity under ``policy``, or None (hold it).

    Every other rule still holds (available, on shift, channel, language, seniority, skills): only the
    capacity is waived, and among those the least loaded goes first.
    """
    if policy not in (LEAST_LOADED, MANAGERS):
        return None
    pool = [s for s in slots if policy == LEAST_LOADED or s.id in managers]
    candidates = [s for s in pool if eligible(item, replace(s, capacity=s.load + 1))]
    return min(candidates, key=rank) if candidates else None


def manager_ids(team: Team) -> frozenset[int]:
    """The managers of the team (admins stand in when it has none), for the ``managers`` policy."""
    bosses = frozenset(i for i, s in team.staff.items() if s.role == Role.MANAGER)
    return bosses or frozenset(i for i, s in team.staff.items() if s.role == Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Capacity:
    """The team's room right now, for the desk's banner."""

    full: bool
    people: int  # available and on shift
    load: int
    capacity: int
    unassigned: int  # posts that need an answer and have nobody
    policy: str


def waiting_filter() -> tuple[Any, ...]:
    """The posts that need an answer and have nobody (what the assignment sweep claims)."""
    return (
        col(Post.status) == PostStatus.SCORED,
        col(Post.needs_response).is_(True),
        col(Post.assignee_id).is_(None),
    )


def team_capacity(session: Session, *, now: datetime) -> Capacity:
    """Whether everyone who could take work is at capacity, and how many posts wait for nobody."""
    team = load_team(session, now=now)
    working = [s for s in team.all_slots() if s.available and s.on_shift]
    unassigned = int(session.execute(select(func.count()).select_from(Post).where(*waiting_filter())).scalar_one())
    return Capacity(
        full=not any(has_room(s) for s in working),
        people=len(working),
        load=sum(s.load for s in working),
        capacity=sum(s.capacity for s in working),
        unassigned=unassigned,
        policy=overflow_policy(session),
    )


def unassigned_backlog(session: Session, *, limit: int = 20) -> list[Post]:
    """The posts waiting for nobody, oldest first (the order in which a freed person should take them)."""
    query = select(Post).where(*waiting_filter()).order_by(col(Post.created_at).asc(), col(Post.id).asc()).limit(limit)
    return list(session.execute(query).scalars())
