"""Desk sessions: a signed cookie bound to a record, handed over once, ended by sign-out, disabling and idleness."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from models import sessions
from models.auth import SignIn, authenticate, hash_password
from models.tables import DeskSession, Staff, utcnow
from tests.support.factories import staff

PASSWORD = "correct horse battery"
KEY = b"k" * 32
LIMITS = sessions.Limits(idle=timedelta(minutes=30), max_age=timedelta(hours=8))


def t0() -> datetime:
    """A fixed instant for the injected clock (UTC)."""
    return utcnow().replace(year=2026, month=3, day=2, hour=9, minute=0, second=0, microsecond=0)


def signed_in(session: Session, name: str = "Ana Session") -> tuple[Staff, str]:
    """A person with a session whose cookie was handed over at t0."""
    member = staff(session, name, role="agent", password_hash=hash_password(PASSWORD))
    started = sessions.start(session, staff=member, limits=LIMITS, now=t0())
    cookie = sessions.exchange(session, handoff=started.handoff, key=KEY, now=t0())
    assert cookie is not None
    return member, cookie


def test_a_cookie_signs_its_person_in_again_until_it_sits_idle_too_long(session: Session) -> None:
    member, cookie = signed_in(session)
    found = sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=t0() + timedelta(minutes=29))
    assert found is not None and found[1].id == member.id
    # Used at 9:29, so still good at 9:58; then nothing for 30 minutes.
    assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=t0() + timedelta(minutes=58))
    assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=t0() + timedelta(minutes=89)) is None


def test_a_session_ends_at_its_maximum_age_however_busy(session: Session) -> None:
    _, cookie = signed_in(session)
    for minutes in range(20, 8 * 60, 20):
        assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=t0() + timedelta(minutes=minutes))
    assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=t0() + timedelta(hours=8)) is None


def test_the_handoff_code_gives_one_cookie_once_and_not_after_a_minute(session: Session) -> None:
    member = staff(session, "Bea Handoff", role="agent", password_hash=hash_password(PASSWORD))
    started = sessions.start(session, staff=member, limits=LIMITS, now=t0())
    assert sessions.handoff_pending(session, session_id=started.session_id, now=t0())
    assert sessions.exchange(session, handoff=started.handoff, key=KEY, now=t0()) is not None
    assert sessions.exchange(session, handoff=started.handoff, key=KEY, now=t0()) is None
    assert not sessions.handoff_pending(session, session_id=started.session_id, now=t0())
    late = sessions.start(session, staff=member, limits=LIMITS, now=t0())
    assert sessions.exchange(session, handoff=late.handoff, key=KEY, now=t0() + timedelta(seconds=61)) is None


def test_a_tampered_or_foreign_cookie_signs_no_one_in(session: Session) -> None:
    _, cookie = signed_in(session)
    record_id, token, signature = cookie.split(".")
    now = t0() + timedelta(minutes=1)
    other_id = str(int(record_id) + 1)
    for forged in (f"{other_id}.{token}.{signature}", f"{record_id}.{token}x.{signature}", cookie + "0", "", "a.b"):
        assert sessions.resume(session, cookie=forged, key=KEY, limits=LIMITS, now=now) is None
    assert sessions.resume(session, cookie=cookie, key=b"another key" * 3, limits=LIMITS, now=now) is None
    # Only hashes are stored: the database alone holds nothing that works as a cookie.
    stored = session.get(DeskSession, int(record_id))
    assert stored is not None and token not in (stored.token_hash or "")


def test_sign_out_ends_the_session_for_every_copy_of_its_cookie(session: Session) -> None:
    _, cookie = signed_in(session)
    sessions.end_by_cookie(session, cookie=cookie, key=KEY)
    assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=t0() + timedelta(minutes=1)) is None


def test_disabling_a_person_ends_their_sessions_and_refuses_their_password(session: Session) -> None:
    member, cookie = signed_in(session)
    assert member.id is not None
    _, other_cookie = signed_in(session, "Carla Stays")
    sessions.set_disabled(session, staff=member, disabled=True)
    now = t0() + timedelta(minutes=1)
    assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=now) is None
    assert sessions.resume(session, cookie=other_cookie, key=KEY, limits=LIMITS, now=now) is not None
    result = authenticate(session, email=member.email, password=PASSWORD, client="10.0.0.9")
    assert result.outcome == SignIn.INVALID
    # Enabled again, they sign in anew; the old cookie stays dead.
    sessions.set_disabled(session, staff=member, disabled=False)
    assert authenticate(session, email=member.email, password=PASSWORD, client="10.0.0.9").outcome == SignIn.OK
    assert sessions.resume(session, cookie=cookie, key=KEY, limits=LIMITS, now=now) is None


def test_the_database_key_is_made_once_and_kept(session: Session) -> None:
    first = sessions.signing_key(session)
    assert len(first) >= 32 and sessions.signing_key(session) == first
    assert sessions.signing_key(session, "configured-secret-" * 2) == b"configured-secret-" * 2
