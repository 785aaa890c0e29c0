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


def test_a_saved_reply_stored_as_a_past_answer_before_the_fix_is_left_out_of_the_index(engine: Engine) -> None:
    """Rows an older version kept (the reply sent unchanged) are never offered again, with no migration."""
    with Session(engine, expire_on_commit=False) as s:
        lucia = staff(s, "Lucía Gómez", role="manager")
        post = scored_post(s, language="es", sentiment="negative", complaint=0.9, text="Mi pedido no llega")
        assign_pending(s)
        s.commit()
        reply = s.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
        reply.state, reply.approved_by_id = ReplyState.SENT, lucia.id
        s.add(reply)
        vector = np.full(DIM, 1 / np.sqrt(DIM), dtype=np.float32)
        s.add(KbAnswer(reply_id=reply.id, post_id=post.id, language="es", text=reply.text, sent_by="Lucía Gómez",  # type: ignore[arg-type]
                       embedding=to_bytes(vector), embedding_model=model_id()))  # fmt: skip
        s.commit()
        assert load_index(s, model_id()).answers == []


def test_one_worker_at_a_time_keeps_the_knowledge_base(engine: Engine) -> None:
    """Two workers settling one page locked its rows in different orders: the second skips its turn instead."""
    with turn(engine, stages._UPKEEP_KEY, stages._UPKEEP_LOCAL) as held:
        assert held
        assert stages.knowledge_upkeep(engine) is None
    assert stages.knowledge_upkeep(engine) is not None
