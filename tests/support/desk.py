"""Test helpers: desk."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col
from streamlit.testing.v1 import AppTest

from ground.db import get_engine
from ground.settings import get_settings
from models.auth import hash_password
from models.tables import (
    AuditEvent,
    Author,
    Post,
    Reply,
    Staff,
)
from networks.base import SentReply
from responder.assign import assign_pending
from review_app import context
from review_app.launch import APP
from review_app.views.signin import EMAIL_KEY, PASSWORD_KEY
from tests.support.factories import scored_post, staff

HOSTILE = "<script>alert(1)</script> [click](http://evil) **bold**"


TIMEOUT = 20


@dataclass
class FakeSender:
    """Records what the app asked it to send."""

    network: str = "x"
    sent: list[str] = field(default_factory=list)

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        self.sent.append(text)
        return SentReply(external_id=f"r-{external_id}", url=None)


def desk_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point the app at a fresh SQLite file with the tables made (shared by the desk's test modules)."""
    yield from desk_engine_on(f"sqlite:///{tmp_path / 'desk.db'}", monkeypatch)


def desk_engine_on(url: str, monkeypatch: pytest.MonkeyPatch, *, senders: bool = False) -> Iterator[Engine]:
    """Point the review app at ``url`` with the tables made; without ``senders``, approvals wait for a worker."""
    monkeypatch.setenv("ESCUCHA_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    st.cache_resource.clear()
    if not senders:
        # No network answers here: approvals are recorded and wait for a worker's outbox.
        monkeypatch.setattr(context, "build_senders", lambda settings: {})
    engine = get_engine()
    SQLModel.metadata.create_all(engine)
    yield engine
    st.cache_resource.clear()
    get_engine.cache_clear()
    get_settings.cache_clear()
    engine.dispose()


@dataclass
class Desk:
    """The rows a desk test starts from."""

    manager: Staff
    manager2: Staff
    agent: Staff
    posts: dict[str, Post]
    replies: dict[str, int]


def seed(engine: Engine) -> Desk:
    """Store a manager, an agent and three assigned posts with pending replies."""
    with Session(engine, expire_on_commit=False) as s:
        # Only the manager can take posts (the agent is away), so every reply is drafted for her.
        manager = staff(s, "Mara Manager", role="manager", senior=True)
        manager2 = staff(s, "Nico Manager", role="manager", available=False)
        agent = staff(s, "Ana Agent", role="agent", available=False)
        posts = {
            "medium": scored_post(s, urgency=50, age_s=600, text="medium: where is my parcel"),
            "high": scored_post(s, urgency=90, age_s=60, text=HOSTILE),
            "low": scored_post(s, urgency=10, age_s=7200, text="low: do you open on sundays"),
        }
        author = s.get(Author, posts["high"].author_id)
        assert author is not None
        author.username = "**evil**<b>"
        s.add(author)
        s.commit()
        assign_pending(s)
        s.commit()
        replies = {
            name: s.execute(select(Reply.id).where(col(Reply.post_id) == p.id)).scalar_one()  # type: ignore[call-overload]
            for name, p in posts.items()
        }
        agent.available = True
        s.add(agent)
        s.commit()
    return Desk(manager=manager, manager2=manager2, agent=agent, posts=posts, replies=replies)


def open_app(as_staff: Staff, lang: str = "en") -> AppTest:
    """Run the app as ``as_staff`` with the interface in ``lang``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = as_staff.id
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def approve(at: AppTest, reply_id: int) -> AppTest:
    """Approve from the queue in its two clicks: "Approve and send", then "Confirm and send"."""
    at.button(key=f"approve_{reply_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at.button(key=f"confirm_{reply_id}").click().run()


def open_tools(at: AppTest, post_id: int | None) -> AppTest:
    """Open one card's extra tools (reject, dismiss, reassign, correct)."""
    return at.button(key=f"more_{post_id}").click().run()


def reply_row(engine: Engine, reply_id: int) -> Reply:
    with Session(engine) as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        return reply


def audits(engine: Engine, action: str) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).where(col(AuditEvent.action) == action)).scalar_one())


VIEWS = Path(APP).parent / "views"


PASSWORD = "correct horse battery"


def user(engine: Engine, name: str, role: str, **kw: object) -> Staff:
    """Store a staff member who can sign in with ``PASSWORD``."""
    kw.setdefault("ui_language", "en")
    with Session(engine, expire_on_commit=False) as s:
        member = staff(s, name, role=role, password_hash=hash_password(PASSWORD), **kw)
    return member


def sign_in(email: str, password: str, lang: str = "en") -> AppTest:
    """Open the app signed out and submit the sign-in form."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    at.run()
    at.text_input(key=EMAIL_KEY).input(email)
    at.text_input(key=PASSWORD_KEY).input(password)
    at.button[-1].click()  # the form's submit button
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_view(view: str, member: Staff) -> AppTest:
    """Run one page script on its own as ``member``, without the app's navigation."""
    at = AppTest.from_file(str(VIEWS / view), default_timeout=TIMEOUT)
    at.session_state["staff_id"] = member.id
    at.session_state["lang"] = "en"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
