"""Head versions and refit attempts in the database: which heads every scorer applies, promotion, rollback, the lock.

No tensors here (the review app reads this without torch); ``classifier/heads.py`` turns a row into heads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.turns import lock_key, turn
from models.tables import Correction, HeadsVersion, RefitAttempt, utcnow

log = logging.getLogger(__name__)

HEADS_SEPARATOR = "+heads-"
# One refit at a time: across processes on PostgreSQL (an advisory lock), across threads in any process.
_LOCK_KEY = lock_key("classifier:refit")
_THREAD_LOCK = threading.Lock()


def model_id_of(base: str, version_id: int | None) -> str:
    """The exact model a score came from: the base weights, plus the heads version when one is active."""
    return base if version_id is None else f"{base}{HEADS_SEPARATOR}{version_id}"


def active_version(session: Session, base: str) -> HeadsVersion | None:
    """The heads version every scorer of ``base`` applies now, if any."""
    return session.execute(
        select(HeadsVersion).where(col(HeadsVersion.base_model) == base, col(HeadsVersion.active).is_(True))
    ).scalar_one_or_none()


def active_version_id(engine: Engine, base: str) -> int | None:
    """The active version's id alone: the cheap read a scorer makes before each batch."""
    with Session(engine) as session:
        found = session.execute(
            select(col(HeadsVersion.id)).where(col(HeadsVersion.base_model) == base, col(HeadsVersion.active).is_(True))
        ).scalar_one_or_none()
    return int(found) if found is not None else None


def latest_correction_id(session: Session) -> int:
    """The newest correction's id (0 when there is none)."""
    return int(session.execute(select(func.max(col(Correction.id)))).scalar() or 0)


def corrections_after(session: Session, after_id: int) -> int:
    """How many corrections were made after the one with id ``after_id``."""
    return int(session.execute(select(func.count()).where(col(Correction.id) > after_id)).scalar() or 0)


def last_attempt(session: Session, base: str) -> RefitAttempt | None:
    """The latest refit attempt (or rollback) for ``base``."""
    return session.execute(
        select(RefitAttempt).where(col(RefitAttempt.base_model) == base).order_by(col(RefitAttempt.id).desc()).limit(1)
    ).scalar_one_or_none()


def attempts(session: Session, base: str | None = None, *, limit: int = 20) -> list[RefitAttempt]:
    """The latest attempts, newest first (every base model's when ``base`` is None)."""
    stmt = select(RefitAttempt).order_by(col(RefitAttempt.id).desc()).limit(limit)
    if base is not None:
        stmt = stmt.where(col(RefitAttempt.base_model) == base)
    return list(session.execute(stmt).scalars())


def record_attempt(session: Session, **fields: Any) -> RefitAttempt:
    """Store one attempt (finished now); the caller commits."""
    attempt = RefitAttempt(finished_at=utcnow(), **fields)
    attempt.reason = attempt.reason[:512]
    session.add(attempt)
    session.flush()
    return attempt


def promote(
    session: Session,
    *,
    base: str,
    weights: bytes,
    temperatures: dict[str, float],
    n_corrections: int,
    last_correction_id: int,
) -> HeadsVersion:
    """Make new heads the active version of ``base``; the one it replaces stays, to roll back to. Caller commits."""
    current = active_version(session, base)
    if current is not None:
        current.active = False
        current.retired_at = utcnow()
        session.add(current)
        session.flush()  # one active row at a time, even inside this transaction
    version = HeadsVersion(
        base_model=base,
        weights=weights,
        temperatures=dict(temperatures),
        active=True,
        previous_id=current.id if current is not None else None,
        n_corrections=n_corrections,
        last_correction_id=last_correction_id,
    )
    session.add(version)
    session.flush()
    return version


class NothingToRollBack(Exception):
    """The base heads are already in use: there is no version to leave."""


def rollback(
    session: Session, *, base: str, actor: str, reason: str, figures: dict[str, Any] | None = None
) -> RefitAttempt:
    """Go back from the active version to the one before it (or the base heads) and record it; caller commits."""
    current = active_version(session, base)
    if current is None:
        raise NothingToRollBack(f"{base} already scores with its base heads")
    previous = session.get(HeadsVersion, current.previous_id) if current.previous_id is not None else None
    current.active = False
    current.retired_at = utcnow()
    session.add(current)
    session.flush()
    if previous is not None:
        previous.active = True
        previous.retired_at = None
        session.add(previous)
    log.warning("heads of %s rolled back from version %s by %s: %s", base, current.id, actor, reason)
    return record_attempt(
        session,
        actor=actor,
        outcome="rolled_back",
        reason=reason,
        base_model=base,
        n_corrections=current.n_corrections,
        last_correction_id=latest_correction_id(session),
        old_model_id=model_id_of(base, current.id),
        new_model_id=model_id_of(base, previous.id if previous is not None else None),
        figures=figures or {},
        heads_version_id=previous.id if previous is not None else None,
    )


@contextlib.contextmanager
def refit_lock(engine: Engine) -> Iterator[bool]:
    """Yield True while this caller alone may refit; False when another worker (or thread) is refitting."""
    with turn(engine, _LOCK_KEY, _THREAD_LOCK) as held:
        yield held
