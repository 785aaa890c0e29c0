"""The care stage keeps the knowledge base current: answers a person wrote are embedded once, without the case."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.base_encoder import DIM
from ground.turns import turn
from knowledge.encoder import model_id, to_bytes
from knowledge.index import load_index
from models.knowledge import KbAnswer
from models.tables import Reply, ReplyState
from responder.assign import assign_pending
from tests.support.factories import scored_post, staff
from worker import stages
from worker.stages import sla_and_care


def _sent_answer(engine: Engine, *, text: str, sentiment: str, complaint: float, written: str | None = None) -> Reply:
    """A post answered through the desk and sent with Lucía's approval: as drafted, or as ``written`` by her."""
    with Session(engine, expire_on_commit=False) as s:
        lucia = staff(s, "Lucía Gómez", role="manager")
        post = scored_post(s, language="es", sentiment=sentiment, complaint=complaint, text=text)
        assign_pending(s)
        s.commit()
        reply = s.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
        if written is not None:
            reply.text = written
        reply.state, reply.approved_by_id = ReplyState.SENT, lucia.id
        s.add(reply)
        s.commit()
        return reply


def test_the_care_stage_embeds_sent_answers_once(engine: Engine) -> None:
    written = "Hola Marta, sí: tenemos tarjetas regalo de 10 a 200 €, en tienda y en la web. — Lucía"
    _sent_answer(engine, text="¿Tenéis tarjeta regalo?", sentiment="neutral", complaint=0.2, written=written)
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
    reply = _sent_answer(engine, text="Mi pedido no llega", sentiment="negative", complaint=0.9)
    assert reply.text == reply.suggested_text and "Lucía" in reply.text
    result = sla_and_care(engine)
    assert result.knowledge is not None and result.knowledge.embedded == 0
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(KbAnswer)).scalar_one() == 0


def test_a_saved_reply_stored_as_a_past_answer_before_the_fix_is_left_out_of_the_index(engine: Engine) -> None:
    """Rows an older version kept (the reply sent unchanged) are never offered again, with no migration."""
    reply = _sent_answer(engine, text="Mi pedido no llega", sentiment="negative", complaint=0.9)
    with Session(engine) as s:
        vector = np.full(DIM, 1 / np.sqrt(DIM), dtype=np.float32)
        s.add(KbAnswer(reply_id=reply.id, post_id=reply.post_id, language="es", text=reply.text,  # type: ignore[arg-type]
                       sent_by="Lucía Gómez", embedding=to_bytes(vector), embedding_model=model_id()))  # fmt: skip
        s.commit()
        assert load_index(s, model_id()).answers == []


def test_one_worker_at_a_time_keeps_the_knowledge_base(engine: Engine) -> None:
    """Two workers settling one page locked its rows in different orders: the second skips its turn instead."""
    with turn(engine, stages._UPKEEP_KEY, stages._UPKEEP_LOCAL) as held:
        assert held
        assert stages.knowledge_upkeep(engine) is None
    assert stages.knowledge_upkeep(engine) is not None
