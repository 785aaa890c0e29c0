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
_ASKED = "escucha.wake.asked"  # session.info key: (the transaction, the stages it asked to wake)


def wake(session: Session, stage: str) -> None:
    """Ask the workers to run ``stage`` once this session's transaction commits (PostgreSQL; else nothing)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    if session.get_bind().dialect.name != "postgresql":
        return
    # Identical notifications of one transaction are folded into one by PostgreSQL, but each is still a statement
    # (a scoring batch asked once per post that needs an answer: 256 round trips): ask once per transaction.
    held = session.info.get(_ASKED)
    if held is not None and held[0] is session.get_transaction() and stage in held[1]:
        return
    # Without a flush: the notification needs none of the session's pending changes, and writing them now would
    # make the caller hold its changed rows for longer (a scoring batch still has its encoder to run).
    with session.no_autoflush:
        session.execute(
            text("SELECT pg_notify(:channel, :stage || ' ' || current_schema())"), {"channel": CHANNEL, "stage": stage}
        )
    # Read after the statement, which began the transaction if none was open. The transaction object is kept,
    # not its id, so a later transaction is never mistaken for this one.
    transaction = session.get_transaction()
    if held is None or held[0] is not transaction:
        asked: set[str] = set()
        held = session.info[_ASKED] = (transaction, asked)
    held[1].add(stage)


def parse(payload: str) -> tuple[str, str] | None:
    """The (stage, schema) a notification's payload names, or None when it is not one of ours."""
    stage, _, schema = payload.partition(" ")
    return (stage, schema) if stage in STAGES and schema else None
