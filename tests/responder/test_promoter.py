"""The promoter switch: an admin's choice kept in the database, the environment's value until then, read by the
care sweep that asks the satisfaction question."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.desk_settings import set_setting
from models.tables import AuditEvent, Post, PostKind, Reply, ReplyKind, Satisfaction, Staff
from networks.base import SentReply
from responder.actions import approve_reply
from responder.assign import assign_pending
from responder.care import CareOptions, CareResult, care_sweep, survey_sweep
from responder.csat import PROMOTER, SATISFACTION
from responder.outbox import send_approved
from responder.permissions import NotAllowed
from responder.promoter import PROMOTER_KEY, promoter_chosen, promoter_mode, set_promoter_mode
from tests.support.factories import scored_post, staff


class Network:
    """Accepts every reply and says it went out."""

    def __init__(self) -> None:
        self.sent = 0

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        self.sent += 1
        return SentReply(external_id=f"r{self.sent}")


@pytest.mark.parametrize("env_default", [False, True])
def test_the_environment_decides_until_an_admin_sets_the_switch(session: Session, env_default: bool) -> None:
    admin = staff(session, "Alex Admin", role="admin")
    assert promoter_mode(session, default=env_default) is env_default and not promoter_chosen(session)
    set_promoter_mode(session, actor=admin, on=not env_default)
    # Stored: a new session (another process) reads the admin's choice, whatever the environment says.
    with Session(session.get_bind()) as other:
        assert promoter_mode(other, default=env_default) is (not env_default)
        assert promoter_mode(other, default=not env_default) is (not env_default)
        assert promoter_chosen(other)
    events = session.execute(select(AuditEvent).where(col(AuditEvent.action) == "satisfaction_promoter_set")).all()
    assert len(events) == 1


def test_only_admins_switch_it_and_a_refusal_changes_nothing(session: Session) -> None:
    for role in ("manager", "agent", "marketing"):
        member = staff(session, f"Not Admin {role}", role=role)
        with pytest.raises(NotAllowed):
            set_promoter_mode(session, actor=member, on=True)
    session.rollback()
    assert not promoter_chosen(session) and promoter_mode(session, default=False) is False


def test_a_value_this_version_does_not_know_leaves_the_default(session: Session) -> None:
    set_setting(session, key=PROMOTER_KEY, value="maybe", by="hand")
    session.commit()
    assert promoter_mode(session, default=True) is True and promoter_mode(session, default=False) is False
    assert not promoter_chosen(session)


def _answered(engine: Engine, boss: Staff) -> Post:
    """A DM from a new customer, answered by a manager and sent (the question goes to private conversations)."""
    with Session(engine, expire_on_commit=False) as session:
        post = scored_post(session, kind=PostKind.DM)
        assign_pending(session)
        session.commit()
        reply = session.execute(
            select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == ReplyKind.ANSWER)
        ).scalar_one()
        approve_reply(session, reply_id=reply.id, staff=boss)  # type: ignore[arg-type]
    send_approved(engine, {"x": Network()})
    return post


def _question(engine: Engine, post: Post) -> tuple[int, str]:
    with Session(engine) as session:
        row = session.execute(select(Satisfaction).where(col(Satisfaction.post_id) == post.id)).scalar_one()
        reply = session.get(Reply, row.reply_id)
        assert reply is not None and reply.kind == ReplyKind.SURVEY
        return row.scale, reply.text


@pytest.mark.parametrize("sweep", [care_sweep, survey_sweep], ids=["care", "worker-survey"])
def test_the_question_asked_follows_the_switch_not_the_environment(
    engine: Engine, sweep: Callable[..., CareResult]
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Priya Shah", languages="en")
        boss = staff(session, "Boss Lady", role="manager", channels="")
        admin = staff(session, "Alex Admin", role="admin", channels="")
    options = CareOptions(ack_dms=False, promoter=False)  # the environment says: the 1–5 question

    with Session(engine, expire_on_commit=False) as session:
        set_promoter_mode(session, actor=admin, on=True)
    first = _answered(engine, boss)
    with Session(engine, expire_on_commit=False) as session:
        assert sweep(session, options=options).surveys == [first.id]
        session.commit()
    scale, text = _question(engine, first)
    assert scale == PROMOTER and "recommend us" in text and "0 (not at all) to 10" in text

    with Session(engine, expire_on_commit=False) as session:
        set_promoter_mode(session, actor=admin, on=False)
    second = _answered(engine, boss)
    with Session(engine, expire_on_commit=False) as session:
        # Switched back: the environment would say promoter, the admin's "off" wins.
        assert sweep(session, options=CareOptions(ack_dms=False, promoter=True)).surveys == [second.id]
        session.commit()
    scale, text = _question(engine, second)
    assert scale == SATISFACTION and "1 (poor) to 5 (excellent)" in text
    assert _question(engine, first)[0] == PROMOTER  # a question already asked keeps its own scale
