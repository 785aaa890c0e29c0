"""Alerts to staff (holding queue, SLA breaches, escalations, crises, rejections, a full team): written once.

The review app lists them as each person's notifications (unread count in the sidebar); ``responder.notify``
pushes them to a team chat when a webhook is set.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from models.tables import Alert, Role, Staff, utcnow

ALERTS: Table = Alert.__table__  # type: ignore[attr-defined]

# What an alert is about; the desk words each kind through its catalogue (review_app.labels, group "alert").
HOLDING = "holding"
BREACH = "breach"
ESCALATION = "escalation"
CRISIS = "crisis"
REJECTED = "rejected"
TEAM_FULL = "team_full"
TASK = "task"
KINDS = (BREACH, ESCALATION, CRISIS, REJECTED, TEAM_FULL, HOLDING, TASK)


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(ALERTS)
    return sqlite.insert(ALERTS)


def add_alert(session: Session, *, key: str, kind: str, staff_id: int, post_id: int | None, message: str) -> None:
    """Add an alert unless one with the same key exists (sweeps repeat; alerts must not)."""
    stmt = _insert(session).values(
        key=key[:128], kind=kind, staff_id=staff_id, post_id=post_id, message=message[:1024], created_at=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


def managers(session: Session) -> list[Staff]:
    """Return the managers to alert; admins stand in when the team has no manager."""
    team = list(session.execute(select(Staff).where(col(Staff.role).in_([Role.MANAGER, Role.ADMIN]))).scalars())
    bosses = [s for s in team if s.role == Role.MANAGER]
    return bosses or team


def alert_managers(session: Session, *, kind: str, post_id: int | None, message: str, key: str) -> int:
    """Alert every manager once for ``key``; return how many were alerted."""
    people = managers(session)
    for person in people:
        assert person.id is not None
        add_alert(session, key=f"{key}:{person.id}", kind=kind, staff_id=person.id, post_id=post_id, message=message)
    return len(people)


def unread_alerts(session: Session, *, staff_id: int) -> list[Alert]:
    """Return a staff member's unread alerts, newest first."""
    query = (
        select(Alert)
        .where(col(Alert.staff_id) == staff_id, col(Alert.read_at).is_(None))
        .order_by(col(Alert.created_at).desc(), col(Alert.id).desc())
    )
    return list(session.execute(query).scalars())


def mark_read(session: Session, *, alert_id: int, staff_id: int) -> None:
    """Mark one of a staff member's alerts as read."""
    session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.staff_id) == staff_id)
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def mark_all_read(session: Session, *, staff_id: int) -> int:
    """Mark every unread alert of a staff member as read; return how many."""
    result = session.execute(
        update(Alert)
        .where(col(Alert.staff_id) == staff_id, col(Alert.read_at).is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def unread_count(session: Session, *, staff_id: int) -> int:
    """How many alerts a staff member has not read yet (the sidebar's number)."""
    query = select(func.count()).where(col(Alert.staff_id) == staff_id, col(Alert.read_at).is_(None))
    return int(session.execute(query).scalar_one())


def list_alerts(
    session: Session, *, staff_id: int, unread_only: bool = False, kinds: tuple[str, ...] = (), limit: int = 100
) -> list[Alert]:
    """A staff member's alerts, newest first, at most ``limit``."""
    query = select(Alert).where(col(Alert.staff_id) == staff_id)
    if unread_only:
        query = query.where(col(Alert.read_at).is_(None))
    if kinds:
        query = query.where(col(Alert.kind).in_(kinds))
    query = query.order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
    return list(session.execute(query).scalars())
