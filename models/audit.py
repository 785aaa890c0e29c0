"""Writing audit events: who did what to which post or reply."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.tables import AuditEvent


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    post_id: int | None = None,
    reply_id: int | None = None,
    **detail: Any,
) -> None:
    """Add one audit event to the session's transaction."""
    session.add(AuditEvent(actor=actor, action=action, post_id=post_id, reply_id=reply_id, detail=detail))
