"""Waking pipeline stages: a PostgreSQL ``NOTIFY`` in the transaction that creates a stage's work.

PostgreSQL delivers a notification only when its transaction commits (and drops it on a rollback), so a stage
woken by one always finds the work committed. Workers ``LISTEN`` (``worker/wake.py``); on SQLite nothing is
sent and the stages keep their ticks. The payload names the stage and the schema, so workers on other schemas
of one database (tests, benches) ignore what is not theirs.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

CHANNEL = "escucha_wake"
# The stages a commit can wake: new posts to score, scored posts to assign, approved replies to send.
STAGES = ("score", "assign", "send")


def wake(session: Session, stage: str) -> None:
    """Ask the workers to run ``stage`` once this session's transaction commits (PostgreSQL; else nothing)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    if session.get_bind().dialect.name != "postgresql":
        return
    # Identical notifications of one transaction are folded into one by PostgreSQL.
    session.execute(
        text("SELECT pg_notify(:channel, :stage || ' ' || current_schema())"), {"channel": CHANNEL, "stage": stage}
    )


def parse(payload: str) -> tuple[str, str] | None:
    """The (stage, schema) a notification's payload names, or None when it is not one of ours."""
    stage, _, schema = payload.partition(" ")
    return (stage, schema) if stage in STAGES and schema else None
