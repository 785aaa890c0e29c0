"""Satisfaction answers in Spanish and English (property tests), asked in the case's channel, stored, read back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.tables import Post, PostKind, PostStatus, Reply, ReplyKind, Satisfaction, utcnow
from networks.base import SentReply
from responder.actions import approve_reply
from responder.assign import assign_pending
from responder.care import CareOptions, care_sweep
from responder.csat import PROMOTER, SATISFACTION, parse_answer, ratings
from responder.outbox import send_approved
from tests.support.factories import scored_post, staff

WORDS = {1: ("uno", "one"), 2: ("dos", "two"), 3: ("tres", "three"), 4: ("cuatro", "four"), 5: ("cinco", "five")}
COMMENTS = st.sampled_from(["", "muy rápidos", "thanks a lot", "todo perfecto", "the agent was kind"])


@given(st.text(max_size=300), st.sampled_from([SATISFACTION, PROMOTER]))
def test_any_text_is_a_rating_on_the_scale_or_not_an_answer(text: str, scale: int) -> None:
    answer = parse_answer(text, scale)
    assert answer is None or (1 if scale == SATISFACTION else 0) <= answer.score <= scale


@given(st.integers(1, 5), st.integers(0, 6), COMMENTS, st.sampled_from([", ", " - ", ". ", "! "]))
def test_a_rating_written_any_way_with_a_comment_reads_back(n: int, form: int, comment: str, sep: str) -> None:
    es, en = WORDS[n]
    written = [str(n), f"{n}/5", es.title(), en, "⭐" * n, f"{n} estrellas", f"{n} stars"][form]
    answer = parse_answer(written + (sep + comment if comment else ""))
    assert answer is not None and answer.score == n and answer.comment == comment


@given(st.integers(0, 10), COMMENTS)
def test_the_promoter_question_reads_zero_to_ten(n: int, comment: str) -> None:
    answer = parse_answer(f"{n}/10" + (f", {comment}" if comment else ""), PROMOTER)
    assert answer is not None and answer.score == n and answer.comment == comment


def test_the_issues_examples_and_what_is_not_an_answer() -> None:
    examples = {"5": 5, "cinco": 5, "⭐⭐⭐⭐": 4, "muy bien": 5, "10/10": 5, "nada satisfecho": 1, "Muy mal.": 1,
                "regular": 3, "bien, gracias": 4, "no muy bien": 2, "Excelente!": 5, "4 de 5": 4}  # fmt: skip
    assert {text: parse_answer(text).score for text in examples} == examples  # type: ignore[union-attr]
    for text in ("2 days and still nothing", "my order 12345", "good morning my order is late", "10", "", "hola"):
        assert parse_answer(text) is None, text
    assert parse_answer("muy bien", PROMOTER) is None  # a 0–10 answer is a number


class Network:
    """Accepts every reply (X or Facebook) and remembers it."""

    def __init__(self, network: str) -> None:
        self.network = network
        self.sent: list[tuple[str, str, str]] = []

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        self.sent.append((external_id, kind, text))
        return SentReply(external_id=f"r{len(self.sent)}")


def _answer_and_send(engine: Engine, post: Post) -> Network:
    with Session(engine, expire_on_commit=False) as session:
        boss = staff(session, "Boss Lady", role="manager", channels="")
        reply = session.execute(
            select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == ReplyKind.ANSWER)
        ).scalar_one()
        approve_reply(session, reply_id=reply.id, staff=boss)  # type: ignore[arg-type]
    network = Network(post.network)
    send_approved(engine, {post.network: network})
    return network


def _customer_says(session: Session, post: Post, text: str, external_id: str) -> Post:
    answer = Post(network=post.network, external_id=external_id, kind=post.kind, source="test",
                  author_id=post.author_id, text=text, created_at=utcnow(), needs_response=True,
                  status=PostStatus.SCORED)  # fmt: skip
    session.add(answer)
    session.commit()
    return answer


def test_csat_is_on_by_default_in_private_and_asked_in_the_public_thread_only_when_switched_on(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Priya Shah", languages="en")
        post = scored_post(session)  # an X mention
        assign_pending(session)
        session.commit()
    network = _answer_and_send(engine, post)
    with Session(engine, expire_on_commit=False) as session:
        # By default a public answer gets no second, automatic reply under it (ask_satisfaction says why).
        assert care_sweep(session, options=CareOptions()).surveys == []
        asked = care_sweep(session, options=CareOptions(public_survey=True))
        session.commit()
        assert asked.surveys == [post.id]
        survey = session.execute(select(Reply).where(col(Reply.kind) == ReplyKind.SURVEY)).scalar_one()
        assert "1 (poor) to 5 (excellent)" in survey.text
    send_approved(engine, {"x": network})
    assert [kind for _, kind, _ in network.sent] == ["mention", "mention"]  # the answer, then the question
    with Session(engine, expire_on_commit=False) as session:
        reply = _customer_says(session, post, "⭐⭐⭐⭐⭐ muy rápidos", "answer-public")
        got = care_sweep(session, options=CareOptions())
        session.commit()
        assert got.answers == [reply.id]
        row = session.execute(select(Satisfaction)).scalar_one()
        assert (row.score, row.scale, row.comment) == (5, 5, "muy rápidos")
        [rating] = ratings(session, author_ids=[post.author_id])  # type: ignore[list-item]
        assert (rating.score, rating.channel, rating.network, rating.comment) == (5, "public", "x", "muy rápidos")
        assert ratings(session, author_ids=[-1]) == []


def test_a_low_score_with_a_comment_is_stored_and_stays_open_for_a_person(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Priya Shah", languages="en")
        post = scored_post(session, kind=PostKind.DM, complaint=0.2, sentiment="neutral")
        assign_pending(session)
        session.commit()
    _answer_and_send(engine, post)
    with Session(engine, expire_on_commit=False) as session:
        care_sweep(session, options=CareOptions(ack_dms=False))
        session.commit()
        reply = _customer_says(session, post, "1, my parcel still has not arrived", "answer-dm")
        got = care_sweep(session, options=CareOptions(ack_dms=False))
        session.commit()
        assert got.answers == []  # not closed as a rating
        session.refresh(reply)
        assert reply.status == PostStatus.SCORED and reply.needs_response is True
        row = session.execute(select(Satisfaction)).scalar_one()
        assert row.score == 1 and row.comment == "my parcel still has not arrived"


def test_the_promoter_question_is_an_option(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Lucía Romero")
        post = scored_post(session, kind=PostKind.DM, language="es", complaint=0.2, sentiment="neutral")
        assign_pending(session)
        session.commit()
    _answer_and_send(engine, post)
    options = CareOptions(ack_dms=False, promoter=True)
    with Session(engine, expire_on_commit=False) as session:
        care_sweep(session, options=options)
        session.commit()
        survey = session.execute(select(Reply).where(col(Reply.kind) == ReplyKind.SURVEY)).scalar_one()
        assert "del 0 (nada) al 10" in survey.text
        _customer_says(session, post, "9", "answer-nps")
        care_sweep(session, options=options)
        session.commit()
        [rating] = ratings(session, scale=PROMOTER)
        assert rating.score == 9 and rating.scale == 10
    assert CareOptions().satisfaction is True  # on by default


def test_the_worker_asks_its_questions_without_waiting_for_the_team_lock(engine: Engine) -> None:
    from responder.care import survey_sweep
    from responder.team import lock_team

    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Priya Shah", languages="en")
        post = scored_post(session, kind=PostKind.DM)
        assign_pending(session)
        session.commit()
    _answer_and_send(engine, post)
    with Session(engine) as sweep:
        # An assignment sweep holds the team lock (on PostgreSQL; SQLite has no row locks to hold).
        lock_team(sweep)
        with Session(engine) as session:
            asked = survey_sweep(session, options=CareOptions())
            session.commit()
        sweep.rollback()
    assert asked.surveys == [post.id]
    with Session(engine) as session:
        again = survey_sweep(session, options=CareOptions())
        assert again.surveys == []  # asked once
        off = survey_sweep(session, options=CareOptions(satisfaction=False))
        assert off.surveys == []


def test_an_answer_goes_to_the_newest_open_question_of_that_person_in_that_channel(engine: Engine) -> None:
    from datetime import timedelta

    with Session(engine, expire_on_commit=False) as session:
        first = scored_post(session)
        second = scored_post(session)
        second.author_id = first.author_id  # the same customer, two cases on X, a question after each
        dm = scored_post(session, kind=PostKind.DM)
        dm.author_id = first.author_id  # and one in their DMs, a channel of its own
        now = utcnow()
        for i, post in enumerate((first, second, dm)):
            post.status = PostStatus.REPLIED
            session.add(post)
            session.add(Satisfaction(post_id=post.id, asked_at=now - timedelta(minutes=10 - i)))  # type: ignore[arg-type]
        session.commit()
        reply = _customer_says(session, first, "4", "rating-1")
        got = care_sweep(session, options=CareOptions(ack_dms=False))
        session.commit()
        assert got.answers == [reply.id]
        rows = {r.post_id: r for r in session.execute(select(Satisfaction)).scalars()}
        assert rows[second.id].score == 4 and rows[second.id].answer_post_id == reply.id  # type: ignore[index]
        assert rows[first.id].score is None and rows[dm.id].score is None  # type: ignore[index]
