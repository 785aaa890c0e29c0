"""The care stage keeps the knowledge base current: answers a person wrote are embedded once, without the case."""

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
        reply.text = "Hola Marta, sí: tenemos tarjetas regalo de 10 a 200 €, en tienda y en la web. — Lucía"
        reply.state = ReplyState.SENT
        reply.approved_by_id = lucia.id
        s.add(reply)
        s.commit()
    first = sla_and_care(engine)
    second = sla_and_care(engine)
    assert first.knowledge is not None and first.knowledge.embedded == 1
    assert second.knowledge is not None and second.knowledge.embedded == 0
    with Session(engine) as s:
        [answer] = s.execute(select(KbAnswer)).scalars().all()
        # Offered to the next customer without this one's name and this agent's signature.
        assert answer.text == "Sí: tenemos tarjetas regalo de 10 a 200 €, en tienda y en la web."


def test_an_answer_sent_as_the_desk_suggested_it_is_never_reused(engine: Engine) -> None:
    """A saved reply sent unchanged names its agent and its own promise: offered again, it promised another case's."""
    with Session(engine, expire_on_commit=False) as s:
        lucia = staff(s, "Lucía Gómez", role="manager")
        post = scored_post(s, language="es", sentiment="negative", complaint=0.9, text="Mi pedido no llega")
        assign_pending(s)
        s.commit()
        reply = s.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
        assert reply.text == reply.suggested_text and "Lucía" in reply.text
        reply.state = ReplyState.SENT
        reply.approved_by_id = lucia.id
        s.add(reply)
        s.commit()
    result = sla_and_care(engine)
    assert result.knowledge is not None and result.knowledge.embedded == 0
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(KbAnswer)).scalar_one() == 0
