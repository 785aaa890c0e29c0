"""Sign-in: argon2 password hashes, verification, and a throttle on failed attempts kept in the database.

Failed attempts are audit events keyed by a hash of the e-mail as typed and a hash of the client address, so
the same limits hold for every e-mail, whether or not it belongs to someone (an unknown e-mail cannot be told
from a known one by the answers), and for every process signing people in against the same database. The
waits grow with each failure, per address and per account; nothing a stranger types locks out everyone.
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
# The longest wait one address (or one account, for addresses it never signed in from) can be given.
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_CHARS = 10
FAILED = "signin_failed"
SIGNED_IN = "signed_in"
_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("escucha-no-such-user")


class SignIn(enum.StrEnum):
    """The outcome of a sign-in attempt; the page says the same thing for unknown and wrong."""

    OK = "ok"
    INVALID = "invalid"
    # Too many failed attempts lately from this address or for this account: no password is checked until
    # ``locked_until``.
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class SignInResult:
    """What a sign-in attempt gave: the outcome, and the staff member when it succeeded."""

    outcome: SignIn
    staff: Staff | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """``free`` failures within ``window`` cost nothing; each one after them doubles the wait before the next try."""

    free: int
    window: timedelta
    first_delay: timedelta
    max_delay: timedelta

    def until(self, failures: list[datetime]) -> datetime | None:
        """When the next attempt may be made after ``failures`` (oldest first, inside the window), if they wait."""
        excess = len(failures) - self.free
        if excess < 0:
            return None
        # Capped before multiplying: a long run of failures must not overflow the timedelta.
        return failures[-1] + min(self.first_delay * 2 ** min(excess, 30), self.max_delay)


@dataclass(frozen=True, slots=True)
class Throttle:
    """The waits after failed sign-ins: per client address, and per account.

    There is no limit over all accounts: a stranger could then lock the whole team out. An account's limit
    counts failures from every address, but from an address where the account signed in within
    ``usual_for`` only that address's failures for it count, so the real user at their usual place is not
    blocked by guesses from elsewhere.
    """

    # Over all e-mails from one address: slows password spraying (one guess for many accounts) from it.
    per_client: Backoff = Backoff(20, timedelta(hours=1), timedelta(seconds=30), LOCKOUT)
    per_account: Backoff = Backoff(MAX_FAILURES, timedelta(hours=1), timedelta(seconds=30), LOCKOUT)
    usual_for: timedelta = timedelta(days=30)


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


def client_key(address: str | None) -> str | None:
    """The stored form of a client address: a hash (an address is personal data), or ``None`` when unknown."""
    if not address:
        return None
    return "ip:" + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:40]


def _failures(
    session: Session, *, since: datetime, key: str | None = None, client: str | None = None, skip: int | None = None
) -> list[datetime]:
    """When the failed attempts after ``since`` happened (for one e-mail, one address, or both), oldest first."""
    query = select(col(AuditEvent.at)).where(col(AuditEvent.action) == FAILED, col(AuditEvent.at) > since)
    if key is not None:
        query = query.where(col(AuditEvent.actor) == key)
    if client is not None:
        query = query.where(col(AuditEvent.client) == client)
    if skip is not None:
        query = query.where(col(AuditEvent.id) != skip)
    times = session.execute(query.order_by(col(AuditEvent.at))).scalars()
    # SQLite hands back naive datetimes; they were stored as UTC.
    return [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]


def _usual_address(
    session: Session, *, staff: Staff | None, client: str | None, now: datetime, within: timedelta
) -> bool:
    """Whether ``staff`` signed in from ``client`` lately (an unknown address is nobody's usual one)."""
    if staff is None or client is None:
        return False
    query = select(col(AuditEvent.id)).where(
        col(AuditEvent.action) == SIGNED_IN,
        col(AuditEvent.actor) == f"staff:{staff.id}",
        col(AuditEvent.client) == client,
        col(AuditEvent.at) > now - within,
    )
    return session.execute(query.limit(1)).first() is not None


def _blocked_until(
    session: Session,
    *,
    key: str,
    client: str | None,
    usual: bool,
    now: datetime,
    throttle: Throttle,
    skip: int | None = None,
) -> datetime | None:
    """When attempts for ``key`` from ``client`` may go on, if they must wait (``skip``: an attempt not to count)."""
    until: list[datetime] = []
    account = throttle.per_account
    # From the account's usual address only that address's failures count; from anywhere else, all of them.
    times = _failures(session, since=now - account.window, key=key, client=client if usual else None, skip=skip)
    if (when := account.until(times)) is not None:
        until.append(when)
    if client is not None:
        # An unknown address is not one bucket: that would let one stranger slow everyone it shares with.
        by_client = throttle.per_client
        times = _failures(session, since=now - by_client.window, client=client, skip=skip)
        if (when := by_client.until(times)) is not None:
            until.append(when)
    latest = max(until) if until else None
    return latest if latest is not None and latest > now else None


def _verify(staff: Staff | None, password: str) -> bool:
    if staff is None or not staff.password_hash:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        return False
    try:
        return bool(_HASHER.verify(staff.password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _lookup(session: Session, email: str) -> Staff | None:
    wanted = email.strip().lower()
    # An address no one can have (NUL, too long for the column) is looked up nowhere: PostgreSQL would
    # refuse the query itself. It takes the same path as any unknown e-mail.
    if len(wanted) > MAX_NAME_CHARS or clean_text(wanted) != wanted:
        return None
    return session.execute(select(Staff).where(func.lower(col(Staff.email)) == wanted)).scalars().first()


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    client: str | None = None,
    now: datetime | None = None,
    throttle: Throttle = THROTTLE,
) -> SignInResult:
    """Check ``email``/``password`` from client address ``client`` unless recent failures say to wait.

    Known and unknown e-mails take the same path and get the same answers. The attempt is recorded as a
    failure before the password is checked, so racing attempts in other processes count it; it becomes a
    ``signed_in`` event if the password is right.
    """
    now = now or utcnow()
    key, where = attempt_key(email), client_key(client)
    staff = _lookup(session, email)
    usual = _usual_address(session, staff=staff, client=where, now=now, within=throttle.usual_for)

    def blocked(skip: int | None = None) -> datetime | None:
        return _blocked_until(session, key=key, client=where, usual=usual, now=now, throttle=throttle, skip=skip)

    if (until := blocked()) is not None:
        return SignInResult(SignIn.LOCKED, locked_until=until)
    attempt = AuditEvent(at=now, actor=key, action=FAILED, client=where)
    session.add(attempt)
    session.commit()
    if (until := blocked(skip=attempt.id)) is not None:
        # Others' attempts got in first: this one is not checked, and does not count.
        session.delete(attempt)
        session.commit()
        return SignInResult(SignIn.LOCKED, locked_until=until)
    # A disabled person's right password is refused like a wrong one, after the same hash check.
    if not _verify(staff, password) or (staff is not None and staff.disabled):
        until = blocked()
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
    attempt.actor, attempt.action = f"staff:{staff.id}", SIGNED_IN
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
