"""Sign-in: argon2 password hashes, verification and lockout after repeated failures."""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.audit import audit
from models.tables import Staff, utcnow

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_CHARS = 10
_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("escucha-no-such-user")


class SignIn(enum.StrEnum):
    """The outcome of a sign-in attempt; the page says the same thing for unknown and wrong."""

    OK = "ok"
    INVALID = "invalid"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class SignInResult:
    """What a sign-in attempt gave: the outcome, and the staff member when it succeeded."""

    outcome: SignIn
    staff: Staff | None = None
    locked_until: datetime | None = None


class WeakPassword(ValueError):
    """The password is too short to be set."""


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _HASHER.hash(password)


def set_password(session: Session, *, staff: Staff, password: str) -> None:
    """Store a new password hash for ``staff`` and clear any lockout (the caller commits)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    session.add(staff)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def authenticate(session: Session, *, email: str, password: str, now: datetime | None = None) -> SignInResult:
    """Check ``email``/``password``; count failures and lock the account after ``MAX_FAILURES`` in a row."""
    now = now or utcnow()
    wanted = email.strip().lower()
    staff = session.execute(select(Staff).where(func.lower(col(Staff.email)) == wanted)).scalars().first()
    if staff is None or not staff.password_hash:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        return SignInResult(SignIn.INVALID)
    locked = _aware(staff.locked_until)
    if locked is not None and locked > now:
        return SignInResult(SignIn.LOCKED, locked_until=locked)
    try:
        _HASHER.verify(staff.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        staff.failed_logins += 1
        if staff.failed_logins >= MAX_FAILURES:
            staff.locked_until = now + LOCKOUT
            staff.failed_logins = 0
            audit(session, actor=f"staff:{staff.id}", action="signin_locked", failures=MAX_FAILURES)
        session.add(staff)
        session.commit()
        if staff.locked_until is not None and _aware(staff.locked_until) > now:  # type: ignore[operator]
            return SignInResult(SignIn.LOCKED, locked_until=_aware(staff.locked_until))
        return SignInResult(SignIn.INVALID)
    staff.failed_logins = 0
    staff.locked_until = None
    if _HASHER.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.add(staff)
    audit(session, actor=f"staff:{staff.id}", action="signed_in")
    session.commit()
    session.refresh(staff)
    return SignInResult(SignIn.OK, staff=staff)


def create_user(
    session: Session, *, name: str, email: str, role: str, password: str, languages: str = "es,en"
) -> Staff:
    """Add a staff member who can sign in with ``password`` (stored only as its hash)."""
    member = Staff(name=name, email=email.strip().lower(), role=role, languages=languages)
    set_password(session, staff=member, password=password)
    session.commit()
    session.refresh(member)
    return member
