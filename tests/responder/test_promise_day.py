"""A simulated working day on the sandbox: every promise the desk makes is kept, through the real clients.

The product's clock (``ground.clock``) and the sandbox's move together in steps; two people on a 9:00–18:00 shift
take their most urgent post, work on it six minutes, and approve its answer, which the outbox sends to the
sandbox. DMs arrive through the day, a burst just before the shift ends, and two in the night.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from ground import clock
from ground.clock import aware
from ground.db import make_engine
from ground.settings import Settings
from models.schema import migrate
from models.tables import Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, Shift, Staff
from networks.registry import build_listeners, build_senders
from responder.actions import approve_reply
from responder.care import CareOptions
from responder.sla_targets import Window, is_open
from sandbox.server import Sandbox
from tests.support.factories import staff
from worker.scheduler import Worker

WORK = timedelta(minutes=6)
SHIFT = [Window(day, 9 * 60, 18 * 60, "UTC") for day in range(5)]
TEXTS = [
    ("es", "Mi pedido no ha llegado y nadie me responde, necesito ayuda"),
    ("en", "My order arrived broken, I want a refund please"),
    ("es", "No puedo entrar en mi cuenta desde ayer"),
    ("en", "Still waiting for my parcel, this is terrible service"),
]


def _next_monday(at: datetime) -> datetime:
    day = (at + timedelta(days=7 - at.weekday())).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _arrivals(monday: datetime) -> list[datetime]:
    daytime = [monday + timedelta(hours=9, minutes=30 * i) for i in range(16)]
    burst = [monday + timedelta(hours=17, minutes=40)] * 8  # just before the shift ends: carried to the morning
    night = [monday + timedelta(hours=21), monday + timedelta(hours=23)]
    return daytime + burst + night


def _work(engine: Engine, working: dict[int, tuple[int, datetime]], answered: dict[int, datetime]) -> None:
    """Each person on shift finishes the post they work on, then takes their most urgent open one."""
    now = clock.now()
    if not is_open(now, SHIFT):
        return
    with Session(engine, expire_on_commit=False) as session:
        for member in session.execute(select(Staff).order_by(col(Staff.id))).scalars():
            assert member.id is not None
            if member.id in working and now >= working[member.id][1]:
                post_id = working.pop(member.id)[0]
                reply = session.execute(
                    select(Reply).where(
                        col(Reply.post_id) == post_id,
                        col(Reply.kind) == ReplyKind.ANSWER,
                        col(Reply.state).in_([ReplyState.SUGGESTED, ReplyState.PENDING_APPROVAL]),
                    )
                ).scalar_one_or_none()
                if reply is None:
                    raise AssertionError(f"post {post_id} lost its suggested answer: {_story(session, post_id)}")
                approve_reply(session, reply_id=reply.id, staff=member)  # type: ignore[arg-type]
                answered[post_id] = now
            if member.id not in working:
                busy = {post for post, _ in working.values()}
                nxt = session.execute(
                    select(col(Post.id))
                    .join(Reply, col(Reply.post_id) == col(Post.id))
                    .where(
                        col(Post.assignee_id) == member.id,
                        col(Post.status) == PostStatus.ASSIGNED,
                        col(Post.id).not_in(busy or {-1}),
                        col(Reply.kind) == ReplyKind.ANSWER,
                        col(Reply.state).in_([ReplyState.SUGGESTED, ReplyState.PENDING_APPROVAL]),
                    )
                    .order_by(col(Post.urgency).desc(), col(Post.created_at), col(Post.id))
                    .limit(1)
                ).scalar_one_or_none()
                if nxt is not None:
                    working[member.id] = (nxt, now + WORK)


def _story(session: Session, post_id: int) -> str:
    from models.tables import AuditEvent

    events = session.execute(select(AuditEvent).where(col(AuditEvent.post_id) == post_id)).scalars()
    return "; ".join(f"{e.at:%H:%M} {e.action} {e.detail}" for e in events)


def test_every_promise_is_kept_through_a_simulated_day_on_the_sandbox(sqlite_url: str) -> None:
    monday = _next_monday(datetime.now(UTC))
    start, end = monday + timedelta(hours=8, minutes=30), monday + timedelta(days=1, hours=12)
    engine = make_engine(sqlite_url)
    migrate(engine)
    arrivals = _arrivals(monday)
    working: dict[int, tuple[int, datetime]] = {}
    answered: dict[int, datetime] = {}
    with Sandbox() as sandbox, clock.simulated(start):
        sandbox.advance((start - sandbox.now()).total_seconds())
        settings = Settings(database_url=sqlite_url, **sandbox.settings_overrides())
        dms = [listener for listener in build_listeners(settings) if listener.source == "dms"]  # where they write
        worker = Worker(engine, listeners=dms, senders=build_senders(settings),
                        scorer=LexiconScorer(), care_options=CareOptions(satisfaction=False))  # fmt: skip
        with Session(engine) as session:
            for name in ("Lucía Romero", "Sam Carter"):
                member = staff(session, name, role="manager", capacity=30, senior=True)
                session.add_all(Shift(staff_id=member.id, weekday=w.weekday, start_minute=w.start_minute,  # type: ignore[arg-type]
                                      end_minute=w.end_minute) for w in SHIFT)  # fmt: skip
            session.commit()
        n = 0
        while clock.now() < end:
            now = clock.now()
            while arrivals and arrivals[0] <= now:
                arrivals.pop(0)
                lang, text = TEXTS[n % len(TEXTS)]
                sandbox.add_dm(f"{text} ({n})", author=f"cliente{n}", lang=lang)
                n += 1
            worker.run_once()
            _work(engine, working, answered)
            worker.send()
            step = 300 if is_open(now, SHIFT) or now.hour in (8, 17, 18) else 1800
            clock.advance(step)
            sandbox.advance(step)
        worker.run_once()
    with Session(engine) as session:
        posts = list(session.execute(select(Post).where(col(Post.kind) == PostKind.DM)).scalars())
        replies = list(session.execute(select(Reply).order_by(col(Reply.id))).scalars())
    engine.dispose()
    assert len(posts) == n == 26
    acks = {r.post_id: r for r in reversed(replies) if r.kind == ReplyKind.ACK}  # each post's first
    assert set(acks) == {p.id for p in posts} == set(answered)
    for post in posts:  # answered by the time the customer was told, every one
        assert answered[post.id] <= aware(acks[post.id].promised_at), (acks[post.id].text, answered[post.id])  # type: ignore[arg-type, index]
    assert not [r.text for r in replies if r.kind == ReplyKind.UPDATE]  # so no promise slipped
    overnight = [a for a in acks.values() if "mañana por la mañana" in a.text or "tomorrow morning" in a.text]
    assert overnight and all(answered[a.post_id] > monday + timedelta(days=1) for a in overnight)
    sent = [r for r in replies if r.kind == ReplyKind.ANSWER and r.state == ReplyState.SENT]
    assert len(sent) == 26 and len([s for s in sandbox.sent if s.network == "x"]) == 26 * 2  # answers and acks
