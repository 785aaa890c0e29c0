"""Who else has a post open: heartbeats written by the desk on every render, read back for the others."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import Presence, Staff, utcnow

FRESH = timedelta(seconds=90)  # a page left open without a rerun stops counting after this
VIEWING = "viewing"
EDITING = "editing"


@dataclass(frozen=True, slots=True)
class Watcher:
    """Someone else who has a post open."""

    name: str
    mode: str


def heartbeat(
    session: Session, *, staff_id: int, post_ids: Sequence[int], mode: str = VIEWING, now: datetime | None = None
) -> None:
    """Record that ``staff_id`` has these posts open; "viewing" never downgrades a fresh "editing"."""
    if not post_ids:
        return
    now = now or utcnow()
    existing = {
        row.post_id: row
        for row in session.execute(
            select(Presence).where(col(Presence.staff_id) == staff_id, col(Presence.post_id).in_(post_ids))
        ).scalars()
    }
    for post_id in post_ids:
        row = existing.get(post_id)
        if row is None:
            session.add(Presence(staff_id=staff_id, post_id=post_id, mode=mode, seen_at=now))
            continue
        seen = row.seen_at if row.seen_at.tzinfo else row.seen_at.replace(tzinfo=now.tzinfo)
        keep_editing = row.mode == EDITING and mode == VIEWING and now - seen < FRESH
        row.mode = EDITING if keep_editing else mode
        row.seen_at = now
        session.add(row)
    session.commit()


def watchers(
    session: Session, *, post_ids: Sequence[int], except_staff_id: int | None, now: datetime | None = None
) -> dict[int, list[Watcher]]:
    """Return, per post, the other people who had it open within ``FRESH``."""
    if not post_ids:
        return {}
    since = (now or utcnow()) - FRESH
    stmt = (
        select(col(Presence.post_id), col(Staff.name), col(Presence.mode))
        .join(Staff, col(Staff.id) == col(Presence.staff_id))
        .where(col(Presence.post_id).in_(post_ids), col(Presence.seen_at) >= since)
        .order_by(col(Staff.name))
    )
    if except_staff_id is not None:
        stmt = stmt.where(col(Presence.staff_id) != except_staff_id)
    out: dict[int, list[Watcher]] = {}
    for post_id, name, mode in session.execute(stmt).all():
        out.setdefault(int(post_id), []).append(Watcher(name=name, mode=mode))
    return out
