"""Sign-in attempts are throttled per e-mail (known or not) and per client address, in the database."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from ground.db import make_engine
from models.auth import (
    FAILED,
    LOCKOUT,
    MAX_FAILURES,
    SignIn,
    SignInResult,
    Throttle,
    attempt_key,
    authenticate,
    client_key,
    hash_password,
)
from models.tables import AuditEvent, Staff, utcnow
from review_app.i18n import t
from tests.support.desk import desk_engine, sign_in
from tests.support.factories import staff

PASSWORD = "correct horse battery"


def start() -> datetime:
    """A fixed instant for the injected clock (UTC)."""
    return utcnow().replace(year=2026, month=3, day=2, hour=9, minute=0, second=0, microsecond=0)


def member(session: Session, name: str = "Ana Throttle") -> Staff:
    return staff(session, name, role="agent", password_hash=hash_password(PASSWORD))


def failures(session: Session, email: str | None = None) -> int:
    query = select(func.count()).where(col(AuditEvent.action) == FAILED)
    if email is not None:
        query = query.where(col(AuditEvent.actor) == attempt_key(email))
    return int(session.execute(query).scalar_one())


def shape(result: SignInResult, t0: datetime) -> tuple[str, timedelta | None]:
    """What a person (or a prober) can see of a result: the outcome and the time it names."""
    return result.outcome.value, None if result.locked_until is None else result.locked_until - t0


def test_known_and_unknown_emails_get_exactly_the_same_answers(session: Session) -> None:
    known = member(session)
    t0 = start()
    answers: dict[str, list[tuple[str, timedelta | None]]] = {known.email: [], "nobody@test": []}
    for email in answers:
        for i in range(MAX_FAILURES + 6):
            now = t0 + timedelta(seconds=10 * i)
            answers[email].append(shape(authenticate(session, email=email, password=f"guess {i}", now=now), t0))
    first_wait = Throttle().per_account.first_delay
    assert answers[known.email][: MAX_FAILURES - 1] == [("invalid", None)] * (MAX_FAILURES - 1)
    # The fifth failure asks for a wait from that failure on; trying again while waiting changes nothing.
    assert answers[known.email][MAX_FAILURES - 1] == ("locked", timedelta(seconds=10 * (MAX_FAILURES - 1)) + first_wait)
    assert {outcome for outcome, _ in answers[known.email][MAX_FAILURES - 1 :]} == {"locked"}
    assert answers["nobody@test"] == answers[known.email]
    # Refused attempts are not checked and do not count: as many failures recorded for each address.
    assert failures(session, known.email) == failures(session, "nobody@test") >= MAX_FAILURES


def test_the_right_password_is_refused_while_throttled_and_accepted_after_the_wait(session: Session) -> None:
    known = member(session)
    t0 = start()
    for i in range(MAX_FAILURES):
        authenticate(session, email=known.email, password="wrong", now=t0 + timedelta(seconds=i))
    waited = t0 + timedelta(seconds=MAX_FAILURES - 1) + Throttle().per_account.first_delay
    during = authenticate(session, email=known.email, password=PASSWORD, now=waited - timedelta(seconds=1))
    assert during.outcome == SignIn.LOCKED and during.staff is None and during.locked_until == waited
    # E-mails are matched as typed, case and spaces aside: no way around the limit by shouting.
    shouted = authenticate(session, email=f"  {known.email.upper()} ", password=PASSWORD, now=t0 + timedelta(seconds=9))
    assert shouted.outcome == SignIn.LOCKED
    # Hammering while locked does not push the wait further out.
    for i in range(20):
        hammer = authenticate(session, email=known.email, password="x", now=t0 + timedelta(seconds=10 + i))
        assert hammer.outcome == SignIn.LOCKED and hammer.locked_until == waited
    after = authenticate(session, email=known.email, password=PASSWORD, now=waited)
    assert after.outcome == SignIn.OK and after.staff is not None and after.staff.id == known.id
    signed_in = session.execute(select(AuditEvent).where(col(AuditEvent.action) == "signed_in")).scalars().all()
    assert [e.actor for e in signed_in] == [f"staff:{known.id}"]
    stored = session.get(Staff, known.id)
    assert stored is not None and stored.failed_logins == 0 and stored.locked_until is None


def test_the_waits_grow_with_each_failure_and_successes_do_not_reset_them(session: Session) -> None:
    known = member(session)
    t0 = start()
    first = Throttle().per_account.first_delay
    # Four failures spread over ten minutes, a success, then one more failure: five inside the window.
    for minute in (0, 3, 6, 9):
        miss = authenticate(session, email=known.email, password="no", now=t0 + timedelta(minutes=minute))
        assert miss.outcome == SignIn.INVALID
    assert authenticate(session, email=known.email, password=PASSWORD, now=t0 + timedelta(minutes=10)).staff
    fifth_at = t0 + timedelta(minutes=11)
    fifth = authenticate(session, email=known.email, password="no", now=fifth_at)
    assert fifth.outcome == SignIn.LOCKED and fifth.locked_until == fifth_at + first
    # Once the wait is over, one more try is allowed; it fails, and the next wait is twice as long.
    again = authenticate(session, email=known.email, password="no", now=fifth_at + first)
    assert again.outcome == SignIn.LOCKED and again.locked_until == fifth_at + first + 2 * first
    assert failures(session, known.email) == MAX_FAILURES + 1
    # The waits never exceed the cap, however long the run of failures.
    assert Throttle().per_account.until([t0] * 100) == t0 + LOCKOUT


def test_attempts_store_neither_the_email_typed_nor_the_password(session: Session) -> None:
    authenticate(session, email="Stranger@Example.org", password="hunter2-secret-guess")
    rows = session.execute(select(AuditEvent)).scalars().all()
    assert [(r.action, r.actor) for r in rows] == [(FAILED, attempt_key("stranger@example.org"))]
    assert "stranger" not in repr(rows).lower() and "hunter2" not in repr(rows)


def test_the_limit_holds_across_processes(db_url: str) -> None:
    """Two engines stand for two review-app processes: failures counted by one throttle the other."""
    engines = [make_engine(db_url), make_engine(db_url)]
    SQLModel.metadata.create_all(engines[0])
    try:
        with Session(engines[0]) as first:
            email = member(first).email
        t0 = start()
        for i in range(MAX_FAILURES):
            with Session(engines[i % 2]) as s:
                authenticate(s, email=email, password="wrong", now=t0 + timedelta(seconds=i))
        with Session(engines[1]) as s:
            late = authenticate(s, email=email, password=PASSWORD, now=t0 + timedelta(seconds=MAX_FAILURES))
            assert late.outcome == SignIn.LOCKED
    finally:
        for engine in engines:
            engine.dispose()


def test_racing_attempts_get_no_more_guesses_than_the_limit(pg_url: str) -> None:
    """Twelve connections guessing at once: each attempt is recorded before its check, so at most five are checked."""
    engine = make_engine(pg_url)
    SQLModel.metadata.create_all(engine)
    try:
        with Session(engine) as s:
            email = member(s).email
        t0 = utcnow()
        results: list[SignIn] = []
        barrier = threading.Barrier(12)

        def guess(i: int) -> None:
            with Session(engine) as s:
                barrier.wait()
                results.append(authenticate(s, email=email, password=f"guess {i}", now=t0).outcome)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with Session(engine) as s:
            checked = failures(s, email)
        assert len(results) == 12 and SignIn.OK not in results
        # Racers that saw too many attempts back out without a check (possibly all of them): never more than five.
        assert checked <= MAX_FAILURES
        assert results.count(SignIn.INVALID) <= MAX_FAILURES - 1
    finally:
        engine.dispose()


# --- the sign-in page ---


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    yield from desk_engine(tmp_path, monkeypatch)


def test_the_page_says_the_same_for_a_throttled_unknown_email_as_for_a_known_one(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        known = member(s, "Kim Known")
    seen: dict[str, list[str]] = {}
    for email in (known.email, "nobody.here@test"):
        answers = [[e.value for e in sign_in(email, f"guess {i}").error] for i in range(MAX_FAILURES + 1)]
        seen[email] = [" | ".join(a) for a in answers]
    clock = re.compile(r"\d\d:\d\d UTC")
    locked = t("en", "signin_locked", until="HH:MM UTC")
    for email, answers in seen.items():
        assert answers[: MAX_FAILURES - 1] == [t("en", "signin_invalid")] * (MAX_FAILURES - 1), email
        assert [clock.sub("HH:MM UTC", a) for a in answers[MAX_FAILURES - 1 :]] == [locked, locked], email
    # The right password while throttled: the same words, and not signed in.
    right = sign_in(known.email, PASSWORD)
    assert "staff_id" not in right.session_state
    assert [clock.sub("HH:MM UTC", e.value) for e in right.error] == [locked]


# --- by client address and per account, with progressive delays; no lock a stranger can put on everyone ---

HOME = "203.0.113.7"  # the real user's usual address


def stranger(i: int) -> str:
    """A different address for each of an attacker's attempts (a botnet)."""
    return f"198.51.{i // 250}.{i % 250 + 1}"


def test_failures_with_random_emails_from_everywhere_lock_no_one_out(session: Session) -> None:
    known = member(session)
    t0 = start()
    for i in range(120):  # far more than the old global limit of 50 within 5 minutes
        result = authenticate(
            session, email=f"random{i}@test", password="x", now=t0 + timedelta(seconds=i), client=stranger(i)
        )
        assert result.outcome == SignIn.INVALID, i
    # Someone signing in for the first time from an address never seen before is not refused.
    first = authenticate(session, email=known.email, password=PASSWORD, now=t0 + timedelta(minutes=2), client=HOME)
    assert first.outcome == SignIn.OK and first.staff is not None


def test_the_real_user_at_their_usual_address_is_not_blocked_by_failures_from_elsewhere(session: Session) -> None:
    known = member(session)
    t0 = start()
    assert authenticate(session, email=known.email, password=PASSWORD, now=t0, client=HOME).outcome == SignIn.OK
    # A botnet guesses this account's password from many addresses until the account is throttled for them.
    outcomes = [
        authenticate(session, email=known.email, password=f"guess {i}", now=t0 + timedelta(minutes=1, seconds=i),
                     client=stranger(i)).outcome
        for i in range(30)
    ]  # fmt: skip
    assert SignIn.LOCKED in outcomes and SignIn.OK not in outcomes
    assert outcomes.count(SignIn.INVALID) == MAX_FAILURES - 1  # the fifth failure already throttles
    late = t0 + timedelta(minutes=1, seconds=30)  # while the account is still throttled for strangers
    elsewhere = authenticate(session, email=known.email, password=PASSWORD, now=late, client=stranger(999))
    assert elsewhere.outcome == SignIn.LOCKED and elsewhere.staff is None
    home = authenticate(session, email=known.email, password=PASSWORD, now=late, client=HOME)
    assert home.outcome == SignIn.OK and home.staff is not None and home.staff.id == known.id


def test_one_address_is_slowed_progressively_over_all_emails(session: Session) -> None:
    limits = Throttle()
    t0 = start()
    now = t0
    waits: list[timedelta] = []
    for i in range(limits.per_client.free + 6):
        result = authenticate(session, email=f"spray{i}@test", password="Summer2026!", now=now, client=stranger(1))
        assert result.outcome != SignIn.OK
        if result.locked_until is None:
            now += timedelta(seconds=1)
            continue
        waits.append(result.locked_until - now)
        # Trying again before the wait is over is refused without a check, and does not lengthen the wait.
        just_before = result.locked_until - timedelta(seconds=1)
        early = authenticate(session, email=f"early{i}@test", password="x", now=just_before, client=stranger(1))
        assert early.outcome == SignIn.LOCKED and early.locked_until == result.locked_until
        now = result.locked_until
    first = limits.per_client.first_delay
    assert waits[:4] == [first, 2 * first, 4 * first, 8 * first]
    assert max(waits) <= limits.per_client.max_delay
    # Another address is not slowed by this one's failures.
    other = authenticate(session, email="spray0@test", password="x", now=now, client=stranger(2))
    assert other.outcome == SignIn.INVALID


def test_an_account_is_slowed_progressively_for_addresses_it_never_signed_in_from(session: Session) -> None:
    known = member(session)
    t0 = start()
    now, waits = t0, []
    for i in range(MAX_FAILURES + 3):
        result = authenticate(session, email=known.email, password="no", now=now, client=stranger(i))
        if result.locked_until is None:
            assert result.outcome == SignIn.INVALID
            now += timedelta(seconds=1)
            continue
        waits.append(result.locked_until - now)
        now = result.locked_until
    limits = Throttle()
    assert waits == [limits.per_account.first_delay * 2**k for k in range(4)]
    # After the wait, the right password from a new address gets in (and that address becomes a usual one).
    ok = authenticate(session, email=known.email, password=PASSWORD, now=now, client=stranger(500))
    assert ok.outcome == SignIn.OK


def test_attempts_record_the_client_address_only_as_a_hash(session: Session) -> None:
    authenticate(session, email="someone@test", password="x", client=HOME)
    rows = session.execute(select(AuditEvent)).scalars().all()
    assert [r.client for r in rows] == [client_key(HOME)]
    assert HOME not in repr(rows)


def test_the_limits_by_address_hold_across_processes(db_url: str) -> None:
    """Two engines stand for two review-app processes: one address's failures in one slow it in the other."""
    engines = [make_engine(db_url), make_engine(db_url)]
    SQLModel.metadata.create_all(engines[0])
    try:
        t0 = start()
        limits = Throttle()
        for i in range(limits.per_client.free):
            with Session(engines[i % 2]) as s:
                authenticate(s, email=f"p{i}@test", password="x", now=t0 + timedelta(seconds=i), client=HOME)
        soon = t0 + timedelta(seconds=limits.per_client.free)
        with Session(engines[1]) as s:
            late = authenticate(s, email="p0@test", password="x", now=soon, client=HOME)
        with Session(engines[0]) as s:
            again = authenticate(s, email="p1@test", password="x", now=soon, client=HOME)
        assert late.outcome == again.outcome == SignIn.LOCKED
    finally:
        for engine in engines:
            engine.dispose()
