"""Sign-in: argon2 password hashes, verification, and a throttle on failed attempts kept in the database.

Failed attempts are audit events keyed by a hash of the e-mail as typed, so the same limits hold for every
address, whether or not it belongs to someone (an unknown e-mail cannot be told from a known one by the
answers), and for every process signing people in against the same database.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.audit import audit
from models.store import clean_text
from models.tables import AuditEvent, Role, Staff, utcnow
from models.validate import MAX_NAME_CHARS, check_email, check_languages, check_name

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
# Over all e-mails together: slows password spraying (one guess for many addresses) to a crawl.
MAX_FAILURES_OVERALL = 50
OVERALL_WINDOW = timedelta(minutes=5)
MIN_PASSWORD_CHARS = 10
FAILED = "signin_failed"
_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("escucha-no-such-user")


class SignIn(enum.StrEnum):
    """The outcome of a sign-in attempt; the page says the same thing for unknown and wrong."""

    OK = "ok"
    INVALID = "invalid"
    # Too many failed attempts for this e-mail, or overall: no password is checked until ``locked_until``.
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class SignInResult:
    """What a sign-in attempt gave: the outcome, and the staff member when it succeeded."""

    outcome: SignIn
    staff: Staff | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Throttle:
    """How many failed sign-ins are allowed per e-mail and overall within their windows."""

    per_email: int = MAX_FAILURES
    email_window: timedelta = LOCKOUT
    overall: int = MAX_FAILURES_OVERALL
    overall_window: timedelta = OVERALL_WINDOW


THROTTLE = Throttle()


class WeakPassword(ValueError):
    """The password is too short to be set."""


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _HASHER.hash(password)


def set_password(session: Session, *, staff: Staff, password: str) -> None:
    """Store a new password hash for ``staff`` and reset its failure count (the caller commits)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    session.add(staff)


def attempt_key(email: str) -> str:
    """The audit actor of sign-in attempts for ``email``: a hash, so what strangers type is not stored."""
    return "signin:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:40]


def _failures(session: Session, *, since: datetime, key: str | None = None) -> list[datetime]:
    """When the failed attempts after ``since`` happened (for one e-mail, or all), oldest first."""
    query = select(col(AuditEvent.at)).where(col(AuditEvent.action) == FAILED, col(AuditEvent.at) > since)
    if key is not None:
        query = query.where(col(AuditEvent.actor) == key)
    times = session.execute(query.order_by(col(AuditEvent.at))).scalars()
    # SQLite hands back naive datetimes; they were stored as UTC.
    return [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]


def _blocked_until(session: Session, *, key: str, now: datetime, throttle: Throttle, slack: int = 0) -> datetime | None:
    """When attempts for ``key`` may go on, if ``slack`` more failures than allowed are already recorded."""
    until: list[datetime] = []
    for limit, window, who in (
        (throttle.per_email, throttle.email_window, key),
        (throttle.overall, throttle.overall_window, None),
    ):
        times = _failures(session, since=now - window, key=who)
        if len(times) >= limit + slack:
            # Allowed again once enough of the oldest failures have left the window.
            until.append(times[len(times) - limit] + window)
    return max(until) if until else None


def _verify(staff: Staff | None, password: str) -> bool:
    if staff is None or not staff.password_hash:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        return False
    try:
        return bool(_HASHER.verify(staff.password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(
    session: Session, *, email: str, password: str, now: datetime | None = None, throttle: Throttle = THROTTLE
) -> SignInResult:
    """Check ``email``/``password`` unless too many attempts failed lately, for this e-mail or overall.

    Known and unknown e-mails take the same path and get the same answers. The attempt is recorded as a
    failure before the password is checked, so racing attempts in other processes count it; it becomes a
    ``signed_in`` event if the password is right.
    """
    now = now or utcnow()
    key = attempt_key(email)
    until = _blocked_until(session, key=key, now=now, throttle=throttle)
    if until is not None:
        return SignInResult(SignIn.LOCKED, locked_until=until)
    attempt = AuditEvent(at=now, actor=key, action=FAILED)
    session.add(attempt)
    session.commit()
    if _blocked_until(session, key=key, now=now, throttle=throttle, slack=1) is not None:
        # Others' attempts got in first: this one is not checked, and does not count.
        session.delete(attempt)
        session.commit()
        until = _blocked_until(session, key=key, now=now, throttle=throttle)
        return SignInResult(SignIn.LOCKED, locked_until=until or now)
    wanted = email.strip().lower()
    # An address no one can have (NUL, too long for the column) is looked up nowhere: PostgreSQL would
    # refuse the query itself. It takes the same path as any unknown e-mail.
    storable = len(wanted) <= MAX_NAME_CHARS and clean_text(wanted) == wanted
    query = select(Staff).where(func.lower(col(Staff.email)) == wanted)
    staff = session.execute(query).scalars().first() if storable else None
    if not _verify(staff, password):
        until = _blocked_until(session, key=key, now=now, throttle=throttle)
        if staff is not None:
            attempt.detail = {"staff": staff.id}
            staff.failed_logins += 1
            if until is not None:
                staff.locked_until = until
                audit(session, actor=f"staff:{staff.id}", action="signin_locked", failures=staff.failed_logins)
            session.add_all([attempt, staff])
            session.commit()
        return SignInResult(SignIn.INVALID) if until is None else SignInResult(SignIn.LOCKED, locked_until=until)
    assert staff is not None and staff.password_hash is not None
    attempt.actor, attempt.action = f"staff:{staff.id}", "signed_in"
    staff.failed_logins = 0
    staff.locked_until = None
    if _HASHER.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.add_all([attempt, staff])
    session.commit()
    session.refresh(staff)
    return SignInResult(SignIn.OK, staff=staff)


def create_user(
    session: Session, *, name: str, email: str, role: str, password: str, languages: str = "es,en"
) -> Staff:
    """Add a staff member who can sign in with ``password`` (stored only as its hash).

    Raises ``ValueError`` (``WeakPassword`` for the password) for a blank or unstorable name, something
    that is not an e-mail or is already taken, an unknown role or language codes that are not codes.
    """
    email = check_email(email)
    member = Staff(name=check_name(name), email=email, role=role, languages=check_languages(languages))
    if role not in set(Role):
        raise ValueError(f"unknown role {role[:20]!r}")
    if session.execute(select(col(Staff.id)).where(func.lower(col(Staff.email)) == email)).first() is not None:
        raise ValueError(f"{email} already has an account")
    set_password(session, staff=member, password=password)
    session.commit()
    session.refresh(member)
    return member
