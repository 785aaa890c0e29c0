"""Sign-in attempts are throttled per e-mail (known or not) and overall, in the database, across processes."""

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
        for i in range(MAX_FAILURES + 3):
            now = t0 + timedelta(seconds=10 * i)
            answers[email].append(shape(authenticate(session, email=email, password=f"guess {i}", now=now), t0))
    expected_lock = ("locked", LOCKOUT)  # until the first failure leaves the window
    assert answers[known.email] == [("invalid", None)] * (MAX_FAILURES - 1) + [expected_lock] * 4
    assert answers["nobody@test"] == answers[known.email]
    # Refused attempts are not checked and do not count: five failures recorded for each address.
    assert failures(session, known.email) == failures(session, "nobody@test") == MAX_FAILURES


def test_the_right_password_is_refused_while_throttled_and_accepted_after_the_window(session: Session) -> None:
    known = member(session)
    t0 = start()
    for i in range(MAX_FAILURES):
        authenticate(session, email=known.email, password="wrong", now=t0 + timedelta(seconds=i))
    during = authenticate(session, email=known.email, password=PASSWORD, now=t0 + LOCKOUT - timedelta(seconds=1))
    assert during.outcome == SignIn.LOCKED and during.staff is None and during.locked_until == t0 + LOCKOUT
    # E-mails are matched as typed, case and spaces aside: no way around the limit by shouting.
    shouted = authenticate(session, email=f"  {known.email.upper()} ", password=PASSWORD, now=t0 + timedelta(minutes=1))
    assert shouted.outcome == SignIn.LOCKED
    # Hammering while locked does not push the lock further out.
    for i in range(20):
        hammer = authenticate(session, email=known.email, password="x", now=t0 + timedelta(minutes=5, seconds=i))
        assert hammer.outcome == SignIn.LOCKED
    later = t0 + LOCKOUT + timedelta(seconds=MAX_FAILURES)
    after = authenticate(session, email=known.email, password=PASSWORD, now=later)
    assert after.outcome == SignIn.OK and after.staff is not None and after.staff.id == known.id
    signed_in = session.execute(select(AuditEvent).where(col(AuditEvent.action) == "signed_in")).scalars().all()
    assert [e.actor for e in signed_in] == [f"staff:{known.id}"]
    stored = session.get(Staff, known.id)
    assert stored is not None and stored.failed_logins == 0 and stored.locked_until is None


def test_the_window_slides_and_successes_do_not_reset_it(session: Session) -> None:
    known = member(session)
    t0 = start()
    # Four failures spread over ten minutes, a success, then one more failure: five inside fifteen minutes.
    for minute in (0, 3, 6, 9):
        miss = authenticate(session, email=known.email, password="no", now=t0 + timedelta(minutes=minute))
        assert miss.outcome == SignIn.INVALID
    assert authenticate(session, email=known.email, password=PASSWORD, now=t0 + timedelta(minutes=10)).staff
    fifth = authenticate(session, email=known.email, password="no", now=t0 + timedelta(minutes=11))
    assert fifth.outcome == SignIn.LOCKED and fifth.locked_until == t0 + LOCKOUT
    # Once the oldest failure has left the window, one more try is allowed (and fails, and locks again).
    again = authenticate(session, email=known.email, password="no", now=t0 + LOCKOUT)
    assert again.outcome == SignIn.LOCKED and again.locked_until == t0 + timedelta(minutes=3) + LOCKOUT
    assert failures(session, known.email) == MAX_FAILURES + 1


def test_failures_over_all_emails_throttle_everyone_for_the_overall_window(session: Session) -> None:
    known = member(session)
    limits = Throttle(per_email=100, overall=4, overall_window=timedelta(minutes=5))
    t0 = start()
    for i in range(4):  # password spraying: one guess each for many addresses
        result = authenticate(
            session, email=f"user{i}@test", password="Summer2026!", now=t0 + timedelta(seconds=i), throttle=limits
        )
        assert result.outcome == (SignIn.INVALID if i < 3 else SignIn.LOCKED)
    one_min = t0 + timedelta(minutes=1)
    refused = authenticate(session, email=known.email, password=PASSWORD, now=one_min, throttle=limits)
    assert refused.outcome == SignIn.LOCKED and refused.locked_until == t0 + timedelta(minutes=5)
    ok = authenticate(session, email=known.email, password=PASSWORD, now=t0 + timedelta(minutes=5), throttle=limits)
    assert ok.outcome == SignIn.OK


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
            late = authenticate(s, email=email, password=PASSWORD, now=t0 + timedelta(minutes=1))
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
