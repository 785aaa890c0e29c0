"""A post's knowledge-lookup vector is made once, in the scoring batch, and every later reader reuses it:
the assignment sweep (no encoder before or under the team lock), the upkeep of past answers, and the index,
which grows by the new answers instead of being read again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select
from sqlmodel import Session, col

import knowledge.encoder as encoder_module
from classifier.lexicon_scorer import LexiconScorer
from classifier.pipeline import score_pending
from knowledge.encoder import default_encoder, to_bytes
from knowledge.importer import seed_demo_manuals
from knowledge.index import _read_index, load_index
from knowledge.upkeep import embed_answers
from models.knowledge import KbAnswer, KbQueryVector
from models.store import save_posts
from models.tables import Post, Reply, ReplyState
from responder.assign import assign_pending
from tests.support.factories import staff
from tests.support.incoming import incoming
from worker.stages import embed_scored_posts

QUESTION = "@Escucha ¿A qué hora abren las tiendas el domingo?"


class Counting:
    """Counts the texts the twelve-layer model really encodes (the memo's hits are free)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: list[str] = []
        encoder = default_encoder()
        real = encoder._base.embed

        def embed(texts: Sequence[str], *, max_length: int) -> np.ndarray:
            self.texts += list(texts)
            return real(texts, max_length=max_length)

        monkeypatch.setattr(encoder._base, "embed", embed)
        encoder._memo.clear()


def _score(session: Session) -> int:
    n = score_pending(session, LexiconScorer(), after=embed_scored_posts)
    session.commit()
    return n


def test_scoring_stores_a_vector_for_each_post_a_reply_will_be_drafted_for(session: Session) -> None:
    seed_demo_manuals(session)
    session.commit()
    save_posts(session, [
        incoming("1", QUESTION, kind="mention"),
        incoming("2", "@Escucha my order never arrived, I want a refund", kind="mention"),
        incoming("3", "nice weather today", kind="search"),  # chatter: no reply, no vector
        incoming("4", "@Escucha Mi ci sono voluti tre giorni", kind="mention"),  # Italian: the manuals don't answer it
    ])  # fmt: skip
    session.commit()
    assert _score(session) == 4
    by_ext = {p.external_id: p.id for p in session.execute(select(Post)).scalars()}
    rows = {r.post_id: r for r in session.execute(select(KbQueryVector)).scalars()}
    assert set(rows) == {by_ext["1"], by_ext["2"]}
    vector = np.frombuffer(rows[by_ext["1"]].vector, dtype="<f4")
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert rows[by_ext["1"]].model_id == default_encoder().model_id
    # The same vector the encoder makes for the post's text.
    assert float(vector @ default_encoder().queries([QUESTION])[0]) > 0.999


def test_the_scored_rows_are_written_after_the_encoder_ran(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # Written before, they would hold up for the whole encoding a webhook storing one of these posts again.
    seed_demo_manuals(session)
    session.commit()
    save_posts(session, [incoming("1", QUESTION, kind="mention")])
    session.commit()
    pending: list[int] = []
    encoder = default_encoder()
    real = encoder._base.embed

    def embed(texts: Sequence[str], *, max_length: int) -> np.ndarray:
        pending.append(sum(isinstance(o, Post) for o in session.dirty))
        return real(texts, max_length=max_length)

    monkeypatch.setattr(encoder._base, "embed", embed)
    encoder._memo.clear()
    assert _score(session) == 1
    assert pending == [1]  # the post's new status was still waiting to be written when the encoder ran
    post_id = session.execute(select(Post.id)).scalar_one()
    assert session.execute(select(KbQueryVector)).scalars().one().post_id == post_id


def test_praise_and_crises_get_no_vector_they_are_answered_by_people(session: Session) -> None:
    seed_demo_manuals(session)
    session.commit()
    save_posts(session, [
        incoming("1", "@Escucha thank you so much, you are the best, love it!", kind="mention"),
        incoming("2", "@Escucha me intoxiqué con vuestra comida, mi hijo está en urgencias", kind="mention"),
        incoming("3", QUESTION, kind="mention"),
    ])  # fmt: skip
    session.commit()
    assert _score(session) == 3
    by_ext = {p.external_id: p.id for p in session.execute(select(Post)).scalars()}
    assert {r.post_id for r in session.execute(select(KbQueryVector)).scalars()} == {by_ext["3"]}


def test_nothing_is_embedded_while_the_knowledge_base_is_empty(session: Session) -> None:
    save_posts(session, [incoming("1", QUESTION, kind="mention")])
    session.commit()
    assert _score(session) == 1
    assert session.execute(select(KbQueryVector)).first() is None


def _desk_with_a_question(session: Session) -> None:
    """The demo manuals, one manager, and one stored (unscored) question the manuals answer."""
    seed_demo_manuals(session)
    session.commit()
    staff(session, "Lucía Gómez", role="manager")
    save_posts(session, [incoming("1", QUESTION, kind="mention")])
    session.commit()


def test_the_sweep_answers_from_the_stored_vector_without_running_the_encoder(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _desk_with_a_question(session)
    _score(session)
    counting = Counting(monkeypatch)
    result = assign_pending(session)
    session.commit()
    assert result.assigned == 1
    assert counting.texts == []  # neither before the team lock nor under it
    reply = session.execute(select(Reply)).scalar_one()
    assert "domingos y festivos de 11:00 a 20:00" in reply.suggested_text


def test_a_post_scored_without_a_vector_is_still_embedded_and_answered(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _desk_with_a_question(session)
    assert score_pending(session, LexiconScorer()) == 1  # as before this version: no hook, no vector
    session.commit()
    counting = Counting(monkeypatch)
    assign_pending(session)
    session.commit()
    assert counting.texts == [f"query: {QUESTION}"]
    assert "11:00 a 20:00" in session.execute(select(Reply)).scalar_one().suggested_text


def test_the_sweep_embeds_no_praise_or_crisis_the_scoring_batch_left_without_a_vector(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _desk_with_a_question(session)
    save_posts(session, [
        incoming("2", "@Escucha thank you so much, you are the best, love it!", kind="mention"),
        incoming("3", "@Escucha me intoxiqué con vuestra comida, mi hijo está en urgencias", kind="mention"),
    ])  # fmt: skip
    session.commit()
    assert _score(session) == 3
    counting = Counting(monkeypatch)
    result = assign_pending(session)
    session.commit()
    # The question and the praise are assigned; the crisis is held for a senior, and this team has none. No draft
    # of a praise or a crisis reads the manuals, so neither is embedded, and the question had its vector already.
    assert result.assigned == 2 and len(result.held) == 1
    assert counting.texts == []


def test_the_upkeep_keeps_the_scored_vector_of_a_sent_answer(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_demo_manuals(session)
    session.commit()
    lucia = staff(session, "Lucía Gómez", role="manager")
    save_posts(session, [incoming("1", "@Escucha ¿Aceptáis pagos con Bizum en la tienda online?", kind="mention")])
    session.commit()
    _score(session)
    assign_pending(session)
    session.commit()
    reply = session.execute(select(Reply)).scalar_one()
    reply.text, reply.state, reply.approved_by_id = "Sí, aceptamos Bizum.", ReplyState.SENT, lucia.id
    reply.sent_at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    session.add(reply)
    session.commit()
    counting = Counting(monkeypatch)
    assert embed_answers(session) == 1
    session.commit()
    assert counting.texts == []
    answer = session.get(KbAnswer, reply.id)
    kept = session.get(KbQueryVector, reply.post_id)
    assert answer is not None and kept is not None and answer.embedding == kept.vector


def _answer(session: Session, n: int, vector: np.ndarray, model: str) -> None:
    save_posts(session, [incoming(f"a{n}", f"question {n}", kind="mention")])
    session.flush()
    post = session.execute(select(Post).where(col(Post.external_id) == f"a{n}")).scalar_one()
    reply = Reply(post_id=post.id, text=f"answer {n}", idempotency_key=f"k{n}", state=ReplyState.SENT)  # type: ignore[arg-type]
    session.add(reply)
    session.flush()
    session.add(KbAnswer(reply_id=reply.id, post_id=post.id, language="en", text=reply.text,  # type: ignore[arg-type]
                         embedding=to_bytes(vector), embedding_model=model))  # fmt: skip
    session.commit()


def test_the_index_grows_by_new_answers_and_matches_a_full_read(session: Session) -> None:
    model = "test-encoder"
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((5, 384)).astype(np.float32)
    for n in range(3):
        _answer(session, n, vectors[n], model)
    first = load_index(session, model)
    assert len(first.answers) == 3
    for n in (3, 4):
        _answer(session, n, vectors[n], model)
    grown = load_index(session, model)
    full = _read_index(session, model)
    assert [a.reply_id for a in grown.answers] == [a.reply_id for a in full.answers]
    assert np.array_equal(grown.answer_matrix, full.answer_matrix)
    assert len(first.answers) == 3  # the index another sweep holds is not changed under it
    # An answer removed: the index is read again in full, never left with a row that is gone.
    session.delete(session.get(KbAnswer, grown.answers[1].reply_id))
    session.commit()
    after = load_index(session, model)
    assert [a.reply_id for a in after.answers] == [a.reply_id for a in _read_index(session, model).answers]
    assert len(after.answers) == 4


def test_the_encoder_module_is_the_one_counted() -> None:
    # The counting helper above patches the process's shared encoder: the product's own lookup must use it.
    assert encoder_module.default_encoder() is default_encoder()
