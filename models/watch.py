"""The watched posts of a network: posts whose replies are read on every poll, each from its own cursor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session, col

from ground.clock import aware
from models.tables import WatchedPost


@dataclass(frozen=True, slots=True)
class Watch:
    """One watched post as a listener sees it: its last activity, its replies cursor, the run that read it."""

    external_id: str
    last_activity: datetime  # timezone-aware
    cursor: str | None = None
    read_in_run: str | None = None


def load_watched(session: Session, *, network: str) -> list[Watch]:
    """Every watched post of ``network``, in post id order."""
    rows = session.execute(
        select(WatchedPost).where(col(WatchedPost.network) == network).order_by(col(WatchedPost.post_external_id))
    ).scalars()
    return [
        Watch(
            external_id=row.post_external_id,
            last_activity=aware(row.last_activity_at),
            cursor=row.comments_cursor,
            read_in_run=row.read_in_run,
        )
        for row in rows
    ]


def save_watches(session: Session, *, network: str, watch: Sequence[Watch], unwatch: Sequence[str]) -> None:
    """Add or update ``watch`` and drop ``unwatch`` in the caller's transaction (a post in both is dropped)."""
    gone = set(unwatch)
    latest = {w.external_id: w for w in watch if w.external_id not in gone}
    if gone:
        session.execute(
            delete(WatchedPost).where(
                col(WatchedPost.network) == network, col(WatchedPost.post_external_id).in_(sorted(gone))
            )
        )
    if not latest:
        return
    found = {
        row.post_external_id: row
        for row in session.execute(
            select(WatchedPost).where(
                col(WatchedPost.network) == network, col(WatchedPost.post_external_id).in_(sorted(latest))
            )
        ).scalars()
    }
    for post_id, w in latest.items():
        row = found.get(post_id) or WatchedPost(
            network=network, post_external_id=post_id, last_activity_at=w.last_activity
        )
        row.last_activity_at = w.last_activity
        row.comments_cursor = w.cursor
        row.read_in_run = w.read_in_run
        session.add(row)
