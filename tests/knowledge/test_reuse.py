"""Past answers: offered to another customer without the case around them, and their outcomes settled page by page."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from knowledge.index import AnswerRow, Index
from knowledge.ranking import AnswerHit
from knowledge.reuse import reusable_text
from knowledge.suggest import Retrieval, choose
from knowledge.upkeep import settle_outcomes
from models.knowledge import KbSuggestion
from models.tables import PostStatus, Reply, ReplyState
from tests.support.factories import scored_post


@pytest.mark.parametrize(
    ("sent", "signer", "kept"),
    [
        ("Hola María, sí, aceptamos Bizum desde marzo. — Lucía", "Lucía Gómez", "Sí, aceptamos Bizum desde marzo."),
        ("Hi there, we open at 9 on Sundays. — Agent", "Agent", "We open at 9 on Sundays."),
        ("@ana_g Hola Ana García! El reembolso tarda 5 días.", "", "El reembolso tarda 5 días."),
        ("¡Hola María! Ya está en camino.", "", "Ya está en camino."),
        ("Estimada María: le confirmamos el reembolso.", "", "Le confirmamos el reembolso."),
        ("Buenos días, el horario es de 9 a 17 h", "", "El horario es de 9 a 17 h"),
        ("Hola, iPhone y iPad tienen 2 años de garantía.", "", "iPhone y iPad tienen 2 años de garantía."),
        ("Sí, aceptamos Bizum en la tienda online.", "", "Sí, aceptamos Bizum en la tienda online."),
        # Not greetings: a sentence that starts with the word; "Buenas noticias" is news, not a hello.
        ("Hello Kitty is back in stock.", "", "Hello Kitty is back in stock."),
        ("Buenas noticias, ya tenemos stock.", "", "Buenas noticias, ya tenemos stock."),
        ("Hey Ana it ships, tomorrow.", "", "Hey Ana it ships, tomorrow."),
        # Not signatures: a dash inside the text, or another person's name after it.
        ("We ship in 3 days — sometimes 5.", "Lucía", "We ship in 3 days — sometimes 5."),
        ("Open 9 – 18 h — Lucía", "Lucía Gómez", "Open 9 – 18 h"),
        ("Rooms are 5-star - all of them.", "", "Rooms are 5-star - all of them."),
        ("Hi there, — Agent", "Agent", ""),
    ],
)
def test_the_greeting_and_signature_of_the_case_are_left_out(sent: str, signer: str, kept: str) -> None:
    assert reusable_text(sent, signer=signer) == kept
    assert reusable_text(kept, signer=signer) == kept  # a second pass (choose() on a stored row) changes nothing


def test_a_suggestion_whose_post_was_answered_without_it_is_settled_as_discarded(session: Session) -> None:
    """Its draft was made again (another owner) and the new one went out: undecided, it was read on every pass."""
    post = scored_post(session, text="¿Abrís el domingo?", language="es")
    session.flush()
    session.add(KbSuggestion(post_id=post.id, language="es", text="Abrimos los domingos de 11:00 a 20:00."))  # type: ignore[arg-type]
    session.add(Reply(post_id=post.id, text="Hola, sí: de 11 a 20 h. — Ana", suggested_text="Hola, sí. — Ana",  # type: ignore[arg-type]
                      idempotency_key="k1", state=ReplyState.SENT))  # fmt: skip
    session.commit()
    assert settle_outcomes(session) == 1
    session.commit()
    assert session.execute(select(KbSuggestion)).scalar_one().outcome == "discarded"


def test_one_upkeep_pass_settles_more_than_a_page(session: Session) -> None:
    """The upkeep runs every half minute: a busy desk's suggestions are settled page after page in one pass."""
    for n in range(5):
        post = scored_post(session, text=f"¿Abrís el domingo {n}?", language="es")
        post.status = PostStatus.DISMISSED  # dismissed without an answer: the suggestion was discarded
        session.add(post)
        session.flush()
        session.add(KbSuggestion(post_id=post.id, language="es", text="Abrimos de 11:00 a 20:00."))  # type: ignore[arg-type]
    session.commit()
    assert settle_outcomes(session, limit=2) == 5
    session.commit()
    outcomes = [r.outcome for r in session.execute(select(KbSuggestion)).scalars()]
    assert outcomes == ["discarded"] * 5
    assert settle_outcomes(session, limit=2, rounds=1) == 0


def test_an_answer_stored_with_its_greeting_is_offered_without_it() -> None:
    """Rows stored before reusable_text existed: the draft adds the new customer's greeting, so this one's goes."""
    row = AnswerRow(reply_id=7, language="en", text="Hi Marta, we open at 9 on Sundays. — Lucía", sent_by="Lucía Gómez",
                    sent_at=None)  # fmt: skip
    found = choose(Retrieval(answers=[AnswerHit(answer=row, similarity=0.99)]), language="en", index=Index())
    assert found is not None and found.text == "We open at 9 on Sundays." and found.answer_reply_id == 7
    only_greeting = AnswerRow(reply_id=8, language="en", text="Hi Marta, — Lucía", sent_by="Lucía", sent_at=None)
    assert choose(Retrieval(answers=[AnswerHit(answer=only_greeting, similarity=0.99)]), language="en",
                  index=Index()) is None  # fmt: skip
