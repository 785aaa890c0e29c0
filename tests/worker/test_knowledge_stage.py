"""The care stage keeps the knowledge base current: answers sent with approval are embedded once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.knowledge import KbAnswer
from models.tables import Reply, ReplyState
from responder.assign import assign_pending
from tests.support.factories import scored_post, staff
from worker.stages import sla_and_care


def test_the_care_stage_embeds_sent_answers_once(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        lucia = staff(s, "Lucía Gómez", role="manager")
        post = scored_post(s, language="es", sentiment="neutral", complaint=0.2, text="¿Tenéis tarjeta regalo?")
        assign_pending(s)
        s.commit()
        reply = s.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
        reply.state = ReplyState.SENT
        reply.approved_by_id = lucia.id
        s.add(reply)
        s.commit()
    first = sla_and_care(engine)
    second = sla_and_care(engine)
    assert first.knowledge is not None and first.knowledge.embedded == 1
    assert second.knowledge is not None and second.knowledge.embedded == 0
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(KbAnswer)).scalar_one() == 1
