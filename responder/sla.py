"""SLA targets: how long a customer may wait for our first answer."""

from __future__ import annotations

from datetime import datetime, timedelta

# Defaults follow the product promise: crisis in minutes, complaints within the hour, never past 24 h.
CRISIS_S = 15 * 60
PUBLIC_COMPLAINT_S = 60 * 60
PUBLIC_OTHER_S = 4 * 60 * 60
DM_S = 4 * 60 * 60
MAX_S = 24 * 60 * 60


def sla_seconds(*, crisis: bool, is_dm: bool, complaint: float) -> int:
    """Return the first-response target in seconds for a post."""
    if crisis:
        return CRISIS_S
    if is_dm:
        return DM_S
    if complaint >= 0.5:
        return PUBLIC_COMPLAINT_S
    return min(PUBLIC_OTHER_S, MAX_S)


def due_at(created_at: datetime, seconds: int) -> datetime:
    """Return when the answer is due; the clock starts at the post's own time, not at ingestion."""
    return created_at + timedelta(seconds=seconds)
