"""Fuzzing every form field of the review desk through the backend functions the forms call.

For each field the contract is: either the value is accepted and stored exactly as the function
documents (stripped text, normalised codes), or it is refused with the error type the page catches and
shows (``InvalidReply``/``ReplyConflict``/``NotAllowed`` on the queue, ``ValueError``/``LookupError`` on the
admin page, ``ValueError`` for ``escucha user add``; sign-in never raises) and nothing changed in the
database. Anything else would be a crash on the page. Both backends: PostgreSQL refuses NUL, overlong
values and out-of-range integers that SQLite takes silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hst
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col
from streamlit.testing.v1 import AppTest

from models.auth import SignIn, authenticate, create_user, hash_password
from models.tables import (
    Assignment,
    Correction,
    Post,
    PostStatus,
    Reply,
    ReplyState,
    Role,
    SavedReply,
    Score,
    Shift,
    SlaPolicy,
    Staff,
)
from models.validate import check_languages
from responder.actions import (
    InvalidReply,
    ReplyConflict,
    approve_reply,
    dismiss_post,
    escalate_post,
    reject_reply,
    submit_reply,
)
from responder.admin import (
    CHANNELS,
    LANES,
    MAX_CAPACITY,
    MAX_SLA_SECONDS,
    UI_LANGUAGES,
    add_shift,
    save_reply_text,
    set_sla_policy,
    set_ui_language,
    update_staff,
)
from responder.corrections import SENTIMENTS, correct_post, reassign_post
from responder.drafts import ensure_saved_replies
from responder.permissions import NotAllowed
from responder.policy import parse_codes
from review_app.i18n import t
from review_app.queries import UNASSIGNED, QueueFilters, count_queue, fetch_queue
from review_app.trends import check_days, keyword_groups, posts_frame
from review_app.views.signin import EMAIL_KEY, PASSWORD_KEY
from tests.support.desk import APP, TIMEOUT, desk_engine_on
from tests.support.factories import scored_post, staff

T = TypeVar("T")
FORMS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
QUEUE_ERRORS = (InvalidReply, ReplyConflict, NotAllowed)  # what the queue page's ``_act`` catches and shows
ADMIN_ERRORS = (ValueError, LookupError, NotAllowed)  # what the admin page's ``_do`` catches and shows

# What a browser can send in a text box (valid UTF-8: NUL and other controls included) plus known trouble.
NASTY = [
    "",
    "   ",
    "\x00",
    "hola\x00mundo",
    "\x1b[31mred",
    "tab\tand\nnewline",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "\u202eevil\u202c",
    "Z̷̢̛a̶̡l̵̨g̵o̶",
    "😀" * 150,
    "x" * 256,
    "x" * 1025,
    "y" * 9000,
    "es",
    "EN, es",
    "pt-br",
    "es,en,fr,de,it,pt,nl,sv,da,fi,no,pl,cs,sk,sl,hr,ro,hu,bg,el,tr,ru,uk",
    "UTC",
    "Europe/Madrid",
    "Europe",
    "ana@test",
    "public,dm",
]
TEXT = hst.text(alphabet=hst.characters(codec="utf-8"), max_size=40) | hst.sampled_from(NASTY)
INTS = hst.integers(min_value=-(2**63), max_value=2**63 - 1) | hst.sampled_from(
    [-1, 0, 1, 6, 7, 59, 60, 500, 501, 1440, 1441, MAX_SLA_SECONDS, MAX_SLA_SECONDS + 1, 2**31, -(2**31)]
)
TABLES: tuple[type[SQLModel], ...] = (Staff, Shift, SlaPolicy, SavedReply, Reply, Post, Score, Correction, Assignment)


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row a form could change, read fresh (the audit log aside: it records refusals too)."""
    with Session(engine) as s:
        return {
            table.__name__: [r.model_dump() for r in s.execute(select(table).order_by(getattr(table, "id"))).scalars()]
            for table in TABLES
        }


@dataclass(frozen=True)
class Outcome:
    """What one form submission did: the function's result, or the refusal it raised."""

    result: Any = None
    refused: Exception | None = None


def submit(engine: Engine, allowed: tuple[type[Exception], ...], work: Callable[[Session], T]) -> Outcome:
    """Run one form's backend call in its own session, like the page does; a refusal must change nothing."""
    before = snapshot(engine)
    with Session(engine, expire_on_commit=False) as session:
        try:
            return Outcome(result=work(session))
        except allowed as exc:
            refused = exc
    assert str(refused), "a refusal says why"
    assert snapshot(engine) == before, f"refused ({refused!r}) but the database changed"
    return Outcome(refused=refused)


@dataclass(frozen=True)
class Team:
    admin: Staff
    manager: Staff
    agent: Staff
    marketing: Staff


@pytest.fixture
def team(engine: Engine) -> Team:
    with Session(engine, expire_on_commit=False) as s:
        made = Team(
            admin=staff(s, "Ada Admin", role=Role.ADMIN),
            manager=staff(s, "Max Manager", role=Role.MANAGER),
            agent=staff(s, "Ana Agent", role=Role.AGENT),
            marketing=staff(s, "Mia Marketing", role=Role.MARKETING, channels=""),
        )
        ensure_saved_replies(s)
    return made


def fresh_reply(engine: Engine, *, assignee: Staff | None = None) -> Reply:
    """An open post with one reply waiting, made for one example (examples share the database)."""
    with Session(engine, expire_on_commit=False) as s:
        post = scored_post(s, text="my order never arrived")
        if assignee is not None:
            post.assignee_id, post.status = assignee.id, PostStatus.ASSIGNED
            s.add(post)
        draft = "Sorry, we are on it."
        reply = Reply(post_id=post.id, state=ReplyState.PENDING_APPROVAL, text=draft, suggested_text=draft,
                      idempotency_key=uuid.uuid4().hex)  # fmt: skip
        s.add(reply)
        s.commit()
        return reply


def row(engine: Engine, table: type[T], row_id: int | None) -> T:
    with Session(engine) as s:
        found = s.get(table, row_id)
        assert found is not None
        return found


# --- admin: staff ---------------------------------------------------------------------------------------


@FORMS
@given(
    role=hst.sampled_from([r.value for r in Role]) | TEXT,
    capacity=INTS,
    languages=hst.sampled_from(["es", "es,en", "EN, es", "pt-br", ""]) | TEXT,
    channels=hst.sampled_from(["public", "dm", "public,dm", "", "DM , Public"]) | TEXT,
    available=hst.booleans(),
    target=hst.sampled_from(["agent", "admin"]),
)
@example(role="manager", capacity=MAX_CAPACITY, languages="EN, es", channels="DM , Public", available=False,
         target="agent")  # fmt: skip
@example(role="agent", capacity=0, languages="", channels="", available=True, target="admin")  # the last admin
def test_staff_edit_stores_exactly_or_refuses_and_changes_nothing(
    engine: Engine, team: Team, role: str, capacity: int, languages: str, channels: str, available: bool, target: str
) -> None:
    member = getattr(team, target)
    outcome = submit(engine, ADMIN_ERRORS, lambda s: update_staff(
        s, actor=team.admin, staff_id=member.id, role=role, capacity=capacity, languages=languages,
        channels=channels, available=available,
    ))  # fmt: skip
    if outcome.refused is None:
        stored = row(engine, Staff, member.id)
        assert (stored.role, stored.capacity, stored.available) == (role, capacity, available)
        assert stored.languages == ",".join(sorted(parse_codes(languages))) == check_languages(languages)
        assert stored.channels == ",".join(sorted(parse_codes(channels)))
        assert 0 <= capacity <= MAX_CAPACITY and len(stored.languages) <= 64


@FORMS
@given(
    weekday=INTS,
    start=INTS,
    end=INTS,
    timezone=TEXT | hst.sampled_from(["UTC", "Europe/Madrid", "America/Mexico_City", " Europe/Madrid ", "Etc"]),
    who=hst.sampled_from(["agent", "nobody"]),
)
@example(weekday=6, start=1380, end=60, timezone=" Europe/Madrid ", who="agent")  # runs past midnight
def test_shift_add_stores_exactly_or_refuses_and_changes_nothing(
    engine: Engine, team: Team, weekday: int, start: int, end: int, timezone: str, who: str
) -> None:
    staff_id = team.agent.id if who == "agent" else 987_654
    outcome = submit(engine, ADMIN_ERRORS, lambda s: add_shift(
        s, actor=team.admin, staff_id=staff_id, weekday=weekday, start_minute=start, end_minute=end,
        timezone=timezone,
    ))  # fmt: skip
    if outcome.refused is None:
        stored = row(engine, Shift, outcome.result.id)
        assert (stored.staff_id, stored.weekday, stored.start_minute, stored.end_minute, stored.timezone) == (
            staff_id, weekday, start, end, timezone.strip()
        )  # fmt: skip
        assert who == "agent"


def test_a_time_zone_that_is_a_folder_is_refused_not_a_crash(session: Session) -> None:
    # ZoneInfo("Europe") raises IsADirectoryError: such a shift would break every SLA computation after it.
    admin = staff(session, "Ada Zone", role=Role.ADMIN)
    for bad in ("Europe", "Nowhere/City", "UTC\x00", ""):
        with pytest.raises(ValueError, match="time zone"):
            add_shift(session, actor=admin, staff_id=admin.id or 0, weekday=0, start_minute=0, end_minute=60,
                      timezone=bad)  # fmt: skip
    assert session.execute(select(Shift)).first() is None


@FORMS
@given(
    channel=hst.sampled_from(CHANNELS) | TEXT,
    lane=hst.sampled_from(LANES) | TEXT,
    seconds=INTS,
    business=hst.booleans(),
)
@example(channel="dm", lane="crisis", seconds=MAX_SLA_SECONDS, business=True)
def test_sla_policy_stores_exactly_or_refuses_and_changes_nothing(
    engine: Engine, team: Team, channel: str, lane: str, seconds: int, business: bool
) -> None:
    outcome = submit(engine, ADMIN_ERRORS, lambda s: set_sla_policy(
        s, actor=team.admin, channel=channel, lane=lane, seconds=seconds, business_hours=business,
    ))  # fmt: skip
    if outcome.refused is None:
        stored = row(engine, SlaPolicy, outcome.result.id)
        assert (stored.channel, stored.lane, stored.seconds) == (channel, lane, seconds)
        assert stored.business_hours == business
        assert 0 < seconds <= MAX_SLA_SECONDS


@FORMS
@given(text=TEXT, which=hst.sampled_from(["first", "missing"]))
@example(text="  {greet}gracias por escribir <b>{name}</b>  ", which="first")
def test_saved_reply_edit_stores_exactly_or_refuses_and_changes_nothing(
    engine: Engine, team: Team, text: str, which: str
) -> None:
    with Session(engine) as s:
        first = s.execute(select(col(SavedReply.id)).order_by(col(SavedReply.id))).scalars().first()
    saved_id = first if which == "first" else 999_999
    outcome = submit(engine, ADMIN_ERRORS, lambda s: save_reply_text(
        s, actor=team.admin, saved_reply_id=saved_id or 0, text=text
    ))  # fmt: skip
    if outcome.refused is None:
        assert row(engine, SavedReply, saved_id).text == text.strip() != ""


@FORMS
@given(language=TEXT | hst.sampled_from(UI_LANGUAGES))
def test_interface_language_is_one_of_two_or_left_as_it_was(engine: Engine, team: Team, language: str) -> None:
    before = row(engine, Staff, team.agent.id).ui_language
    with Session(engine) as s:
        me = s.get(Staff, team.agent.id)
        assert me is not None
        set_ui_language(s, staff=me, language=language)
    assert row(engine, Staff, team.agent.id).ui_language == (language if language in UI_LANGUAGES else before)


def test_admin_forms_are_admin_only(engine: Engine, team: Team) -> None:
    for actor in (team.manager, team.agent, team.marketing):
        outcome = submit(engine, ADMIN_ERRORS, lambda s, actor=actor: set_sla_policy(
            s, actor=actor, channel="dm", lane="other", seconds=600, business_hours=False
        ))  # fmt: skip
        assert isinstance(outcome.refused, NotAllowed)


# --- the queue: reply text, notes, reasons, corrections -------------------------------------------------


@FORMS
@given(action=hst.sampled_from(["submit", "approve", "reject", "dismiss", "escalate"]), text=TEXT)
def test_queue_texts_are_stored_exactly_or_refused_and_change_nothing(
    engine: Engine, team: Team, action: str, text: str
) -> None:
    # The agent's own post: agents may dismiss only what is assigned to them.
    reply = fresh_reply(engine, assignee=team.agent)
    rid, pid = reply.id or 0, reply.post_id
    work: dict[str, Callable[[Session], Any]] = {
        "submit": lambda s: submit_reply(s, reply_id=rid, staff=team.agent, text=text),
        "approve": lambda s: approve_reply(s, reply_id=rid, staff=team.manager, text=text),
        "reject": lambda s: reject_reply(s, reply_id=rid, staff=team.manager, note=text),
        "dismiss": lambda s: dismiss_post(s, post_id=pid, staff=team.agent, reason=text),
        "escalate": lambda s: escalate_post(s, post_id=pid, staff=team.manager, reason=text),
    }
    outcome = submit(engine, QUEUE_ERRORS, work[action])
    if outcome.refused is not None:
        assert isinstance(outcome.refused, InvalidReply)  # a fresh reply: only the text can be wrong
        return
    typed = text.strip()
    assert typed
    if action in ("submit", "approve"):
        stored = row(engine, Reply, rid)
        assert stored.text == typed
        assert stored.state == (ReplyState.PENDING_APPROVAL if action == "submit" else ReplyState.APPROVED)
    elif action == "reject":
        assert row(engine, Reply, rid).note == typed
    else:
        post = row(engine, Post, pid)
        assert post.resolution_note == typed and post.status in (PostStatus.DISMISSED, PostStatus.ESCALATED)


@FORMS
@given(
    to=hst.sampled_from(["agent", "manager", "marketing", "nobody"]),
    reason=TEXT,
    sentiment=hst.none() | hst.sampled_from(SENTIMENTS) | TEXT,
    urgency=hst.none() | hst.sampled_from([0, 55, 100]) | INTS,
)
def test_reassign_and_corrections_store_exactly_or_refuse_and_change_nothing(
    engine: Engine, team: Team, to: str, reason: str, sentiment: str | None, urgency: int | None
) -> None:
    post_id = fresh_reply(engine, assignee=team.manager).post_id
    target = getattr(team, to).id if to != "nobody" else 987_654
    moved = submit(engine, QUEUE_ERRORS, lambda s: reassign_post(
        s, post_id=post_id, staff=team.manager, to_staff_id=target, reason=reason
    ))  # fmt: skip
    if moved.refused is None:
        assert to in ("agent", "manager") and row(engine, Post, post_id).assignee_id == target
        with Session(engine) as s:
            latest = (
                s.execute(
                    select(Assignment).where(col(Assignment.post_id) == post_id).order_by(col(Assignment.id).desc())
                )
                .scalars()
                .first()
            )
        assert latest is not None and latest.reason == (reason.strip() or "reassigned")
    corrected = submit(engine, QUEUE_ERRORS, lambda s: correct_post(
        s, post_id=post_id, staff=team.agent, sentiment=sentiment, urgency=urgency
    ))  # fmt: skip
    if corrected.refused is None:
        post = row(engine, Post, post_id)
        with Session(engine) as s:
            score = s.execute(select(Score).where(col(Score.post_id) == post_id)).scalar_one()
        if sentiment is not None:
            assert score.sentiment == sentiment in SENTIMENTS
        if urgency is not None:
            assert post.urgency == urgency and 0 <= urgency <= 100


# --- sign-in and adding people -------------------------------------------------------------------------

PASSWORD = "correct horse battery"


PASSWORD_HASH = hash_password(PASSWORD)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(email=TEXT | hst.sampled_from(["ada.admin@test", " ADA.ADMIN@TEST "]), password=TEXT | hst.just(PASSWORD))
def test_sign_in_answers_any_email_and_password_without_a_crash(
    engine: Engine, team: Team, email: str, password: str
) -> None:
    with Session(engine) as s:
        admin = s.get(Staff, team.admin.id)
        assert admin is not None
        admin.password_hash = PASSWORD_HASH  # argon2 is slow on purpose: hash once, not per example
        s.add(admin)
        s.commit()
        result = authenticate(s, email=email, password=password)
    assert result.outcome in (SignIn.INVALID, SignIn.LOCKED, SignIn.OK)
    if result.outcome == SignIn.OK:
        assert email.strip().lower() == "ada.admin@test" and password == PASSWORD


def test_an_email_with_nul_is_an_unknown_email(session: Session) -> None:
    # PostgreSQL refuses NUL in a query parameter: the sign-in page used to crash on it.
    member = staff(session, "Nul Tester", role=Role.AGENT, password_hash=PASSWORD_HASH)
    for email in ("nul.tester@test\x00", "\x00", "a" * 300 + "@test"):
        assert authenticate(session, email=email, password=PASSWORD).outcome == SignIn.INVALID
    assert authenticate(session, email=member.email, password=PASSWORD).outcome == SignIn.OK


@FORMS
@given(
    name=TEXT,
    email=TEXT | hst.builds(lambda n: f"user{n}@test", hst.integers(0, 10**6)),
    role=hst.sampled_from([r.value for r in Role]) | TEXT,
    languages=hst.sampled_from(["es", "es,en", " EN "]) | TEXT,
    password=hst.sampled_from([PASSWORD, "short"]) | TEXT,
)
@example(name=" Lucía Romero ", email=" Lucia.R@Test ", role="agent", languages="ES, en", password=PASSWORD)
def test_user_add_stores_exactly_or_refuses_and_changes_nothing(
    engine: Engine, team: Team, name: str, email: str, role: str, languages: str, password: str
) -> None:
    outcome = submit(engine, (ValueError,), lambda s: create_user(
        s, name=name, email=email, role=role, password=password, languages=languages
    ))  # fmt: skip
    if outcome.refused is None:
        stored = row(engine, Staff, outcome.result.id)
        assert (stored.name, stored.email, stored.role) == (name.strip(), email.strip().lower(), role)
        assert stored.name and stored.languages == check_languages(languages) and len(password) >= 10
        with Session(engine) as s:
            assert authenticate(s, email=email, password=password).outcome == SignIn.OK


def test_user_add_refuses_a_blank_name_and_a_taken_email(session: Session) -> None:
    create_user(session, name="Ana", email="ana@test", role="agent", password=PASSWORD)
    for kwargs in ({"name": "   ", "email": "new@test"}, {"name": "Ana Two", "email": " ANA@test "}):
        with pytest.raises(ValueError):
            create_user(session, role="agent", password=PASSWORD, **kwargs)
    assert [s.email for s in session.execute(select(Staff)).scalars()] == ["ana@test"]


# --- search and filter boxes ---------------------------------------------------------------------------


@FORMS
@given(
    networks=hst.lists(TEXT | hst.sampled_from(["x", "facebook"]), max_size=3),
    languages=hst.lists(TEXT | hst.sampled_from(["es", "en"]), max_size=2),
    sentiments=hst.lists(TEXT | hst.sampled_from(SENTIMENTS), max_size=2),
    statuses=hst.lists(TEXT | hst.sampled_from(["scored", "assigned"]), max_size=2),
    assignee=hst.none() | hst.just(UNASSIGNED) | hst.integers(min_value=-(2**31), max_value=2**31 - 1),
    page=INTS,
)
def test_queue_filters_take_any_value_and_only_ever_narrow(
    engine: Engine,
    team: Team,
    networks: list[str],
    languages: list[str],
    sentiments: list[str],
    statuses: list[str],
    assignee: int | None,
    page: int,
) -> None:
    with Session(engine) as s:
        if count_queue(s, filters=QueueFilters()) < 2:
            scored_post(s, network="x", language="en", sentiment="negative")
            scored_post(s, network="facebook", kind="comment", language="es", sentiment="positive")
        everything = {i.post_id for i in fetch_queue(s, filters=QueueFilters(), page_size=500).items}
        filters = QueueFilters(
            networks=tuple(networks), languages=tuple(languages), sentiments=tuple(sentiments),
            statuses=tuple(statuses), assignee_id=assignee,
        )  # fmt: skip
        result = fetch_queue(s, filters=filters, page=page, page_size=500)
    found = {i.post_id for i in result.items}
    assert found <= everything and result.total == len(found) and result.page == 1
    for item in result.items:
        assert not networks or item.network in networks
        assert not sentiments or item.sentiment in sentiments


@FORMS
@given(keywords=hst.lists(TEXT, max_size=4), days=INTS)
def test_trends_keyword_box_and_days_take_any_value(engine: Engine, team: Team, keywords: list[str], days: int) -> None:
    frame = pd.DataFrame({"text": ["Mi pedido <script>", "refund NOW\x00", "😀 hola"], "sentiment": ["negative"] * 3})
    grouped = keyword_groups(frame, [w.strip() for w in keywords if w.strip()])
    assert set(grouped.columns) >= {"text", "group"}
    for _, hit in grouped.iterrows():
        assert hit["group"].lower() in hit["text"].lower()
    try:
        check_days(days)
    except ValueError:
        with Session(engine) as s, pytest.raises(ValueError):
            posts_frame(s, days=days)
        return
    with Session(engine) as s:
        assert isinstance(posts_frame(s, days=days), pd.DataFrame)


# --- the pages themselves: a refused value is a message, not a crash ----------------------------------


@pytest.fixture
def page_engine(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's own engine on this test's database (a SQLite file or a PostgreSQL schema)."""
    yield from app_engine_on(db_url, monkeypatch)


def app_engine_on(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point the review app at ``url`` with the tables made; no sender registry (approvals wait for a worker)."""
    yield from desk_engine_on(url, monkeypatch)


def test_pages_show_refusals_as_messages(page_engine: Engine) -> None:
    with Session(page_engine, expire_on_commit=False) as s:
        boss = staff(s, "Ada Pages", role=Role.ADMIN, password_hash=PASSWORD_HASH)
    signin = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    signin.session_state["lang"] = "en"
    signin.run()
    signin.text_input(key=EMAIL_KEY).input("ada.pages@test\x00")
    signin.text_input(key=PASSWORD_KEY).input(PASSWORD)
    signin.button[-1].click().run()
    assert not signin.exception, [e.value for e in signin.exception]
    assert [e.value for e in signin.error] == [t("en", "signin_invalid")]

    admin = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    admin.session_state["staff_id"], admin.session_state["lang"] = boss.id, "en"
    admin.run()
    admin.switch_page("views/admin.py").run()
    admin.text_input(key=f"shift_tz_{boss.id}").set_value("Europe")
    admin.button(key=f"add_shift_{boss.id}").click().run()
    assert not admin.exception, [e.value for e in admin.exception]
    assert len(admin.error) == 1 and "time zone" in admin.error[0].value
    admin.text_input(key=f"languages_{boss.id}").set_value("es, <b>\x00")
    admin.button(key=f"save_staff_{boss.id}").click().run()
    assert not admin.exception, [e.value for e in admin.exception]
    assert len(admin.error) == 1 and "language code" in admin.error[0].value
    with Session(page_engine) as s:
        assert s.execute(select(Shift)).first() is None
        assert s.get(Staff, boss.id).languages == "es,en"  # type: ignore[union-attr]
