"""Desk sessions: a signed, expiring cookie bound to a server-side record, so a reload or a link keeps people in.

The flow, with no secret ever in a URL:

1. a correct password (``models.auth.authenticate``) starts a record with a one-time *handoff* code, good for
   ``HANDOFF_TTL``; the page hands it to the browser, which POSTs it (in the body) to the app's own endpoint;
2. that endpoint exchanges it, once, for the session token and sets it as an HttpOnly, SameSite=Strict cookie
   (``cookie_value``: the record's id, the token and an HMAC of both), which no script on the page can read;
3. on a reload or a link the new page reads the cookie (``resume``) and is signed in again.

A session ends when its person signs out (``end``), is disabled (``revoke_all``), has been idle for longer than
the idle limit, or reaches its maximum age. The database holds only hashes of the token and the handoff code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from models.tables import DeskKey, DeskSession, Staff, utcnow

COOKIE_NAME = "escucha_session"
HANDOFF_TTL = timedelta(seconds=60)
# last_seen_at is written at most this often: a rerun per click must not be a write per click.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a session may sit idle, and how long it lasts at most."""

    idle: timedelta = timedelta(minutes=60)
    max_age: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Started:
    """A session just started: its record's id and the one-time code the browser exchanges for the cookie."""

    session_id: int
    handoff: str


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _aware(when: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)


def signing_key(session: Session, configured: str | None = None) -> bytes:
    """The key that signs cookies: ``configured`` (ESCUCHA_SESSION_SECRET), else one kept in the database."""
    if configured:
        return configured.encode()
    key = session.get(DeskKey, 1)
    if key is None:
        try:
            session.add(DeskKey(id=1, secret=secrets.token_hex(32)))
            session.commit()
        except IntegrityError:
            # Another process made it first: use theirs.
            session.rollback()
        key = session.get(DeskKey, 1)
    assert key is not None
    return key.secret.encode()


def _sign(key: bytes, session_id: int, token: str) -> str:
    return hmac.new(key, f"{session_id}.{token}".encode(), hashlib.sha256).hexdigest()


def start(session: Session, *, staff: Staff, limits: Limits = Limits(), now: datetime | None = None) -> Started:
    """Start a session for ``staff`` (just authenticated) and return the one-time handoff code for its cookie."""
    now = now or utcnow()
    assert staff.id is not None
    handoff = secrets.token_urlsafe(32)
    record = DeskSession(
        staff_id=staff.id,
        handoff_hash=_hash(handoff),
        handoff_until=now + HANDOFF_TTL,
        created_at=now,
        last_seen_at=now,
        expires_at=now + limits.max_age,
    )
    session.add(record)
    session.commit()
    assert record.id is not None
    return Started(session_id=record.id, handoff=handoff)


def exchange(session: Session, *, handoff: str, key: bytes, now: datetime | None = None) -> str | None:
    """Trade a handoff code, once and before it expires, for the cookie's value; ``None`` when it is not good."""
    now = now or utcnow()
    if not handoff or len(handoff) > 128:
        return None
    token = secrets.token_urlsafe(32)
    # One UPDATE that also clears the code: two racing exchanges of one code cannot both win.
    won = session.execute(
        update(DeskSession)
        .where(
            col(DeskSession.handoff_hash) == _hash(handoff),
            col(DeskSession.handoff_until) > now,
            col(DeskSession.revoked_at).is_(None),
        )
        .values(handoff_hash=None, handoff_until=None, token_hash=_hash(token))
        .returning(col(DeskSession.id))
    ).first()
    session.commit()
    if won is None:
        return None
    session_id = int(won[0])
    return f"{session_id}.{token}.{_sign(key, session_id, token)}"


def handoff_pending(session: Session, *, session_id: int, now: datetime | None = None) -> bool:
    """Whether a session's one-time code is still waiting to be exchanged (and may still be)."""
    record = session.get(DeskSession, session_id)
    until = _aware(record.handoff_until) if record is not None else None
    return record is not None and record.handoff_hash is not None and until is not None and until > (now or utcnow())


def _parse(value: str, key: bytes) -> tuple[int, str] | None:
    parts = value.split(".") if value and len(value) < 256 else []
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    session_id, token, signature = int(parts[0]), parts[1], parts[2]
    if not hmac.compare_digest(signature, _sign(key, session_id, token)):
        return None
    return session_id, token


def _live(record: DeskSession | None, limits: Limits, now: datetime) -> bool:
    if record is None or record.revoked_at is not None:
        return False
    last_seen, expires = _aware(record.last_seen_at), _aware(record.expires_at)
    assert last_seen is not None and expires is not None
    return now < expires and now - last_seen < limits.idle


def _touch(session: Session, record: DeskSession, now: datetime) -> None:
    last_seen = _aware(record.last_seen_at)
    if last_seen is None or now - last_seen >= TOUCH_EVERY:
        record.last_seen_at = now
        session.add(record)
        session.commit()


def _owner(session: Session, record: DeskSession) -> Staff | None:
    staff = session.get(Staff, record.staff_id)
    # A disabled person, or one whose password was taken away, is signed in nowhere.
    return staff if staff is not None and not staff.disabled and staff.password_hash else None


def resume(
    session: Session, *, cookie: str | None, key: bytes, limits: Limits = Limits(), now: datetime | None = None
) -> tuple[int, Staff] | None:
    """The session id and person a cookie signs in, if its signature, record, idle time and age all allow it."""
    now = now or utcnow()
    parsed = _parse(cookie or "", key)
    if parsed is None:
        return None
    session_id, token = parsed
    record = session.get(DeskSession, session_id)
    if record is None or record.token_hash is None or not hmac.compare_digest(record.token_hash, _hash(token)):
        return None
    return _check(session, record, limits, now)


def check(session: Session, *, session_id: int, limits: Limits = Limits(), now: datetime | None = None) -> Staff | None:
    """The person of an already open session while it is still live (each page run asks again)."""
    found = _check(session, session.get(DeskSession, session_id), limits, now or utcnow())
    return found[1] if found else None


def _check(session: Session, record: DeskSession | None, limits: Limits, now: datetime) -> tuple[int, Staff] | None:
    if record is None or not _live(record, limits, now):
        return None
    staff = _owner(session, record)
    if staff is None:
        return None
    _touch(session, record, now)
    assert record.id is not None
    return record.id, staff


def end(session: Session, *, session_id: int, now: datetime | None = None) -> None:
    """End one session (sign-out): its cookie signs no one in from now on."""
    session.execute(
        update(DeskSession)
        .where(col(DeskSession.id) == session_id, col(DeskSession.revoked_at).is_(None))
        .values(revoked_at=now or utcnow(), handoff_hash=None, handoff_until=None)
    )
    session.commit()


def end_by_cookie(session: Session, *, cookie: str | None, key: bytes) -> None:
    """End the session a cookie names, if its signature holds (the sign-out endpoint, which sees the cookie)."""
    parsed = _parse(cookie or "", key)
    if parsed is not None:
        end(session, session_id=parsed[0])


def revoke_all(session: Session, *, staff_id: int, now: datetime | None = None) -> None:
    """End every session of one person (they were disabled); the caller commits."""
    session.execute(
        update(DeskSession)
        .where(col(DeskSession.staff_id) == staff_id, col(DeskSession.revoked_at).is_(None))
        .values(revoked_at=now or utcnow(), handoff_hash=None, handoff_until=None)
    )


def set_disabled(session: Session, *, staff: Staff, disabled: bool) -> None:
    """Disable (or enable again) a person: a disabled one cannot sign in, and their sessions end now."""
    staff.disabled = disabled
    session.add(staff)
    if disabled:
        assert staff.id is not None
        revoke_all(session, staff_id=staff.id)
    session.commit()
