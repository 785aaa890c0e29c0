"""Team-wide desk settings an admin changes from the desk, stored as text by key (``desk_setting``)."""

from __future__ import annotations

from sqlmodel import Session

from models.tables import DeskSetting, utcnow


def get_setting(session: Session, key: str, default: str) -> str:
    """Return the stored value of ``key``, or ``default`` when nobody set it."""
    row = session.get(DeskSetting, key)
    return row.value if row is not None else default


def set_setting(session: Session, *, key: str, value: str, by: str) -> None:
    """Store ``value`` for ``key`` (the caller checks the permission and commits)."""
    row = session.get(DeskSetting, key) or DeskSetting(key=key, value=value)
    row.value = value[:255]
    row.updated_at = utcnow()
    row.updated_by = by[:64]
    session.add(row)
