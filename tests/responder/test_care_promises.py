"""Acknowledgements promise a forecast; delay updates only after a promise passed, once, stoppable; text fits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from ground.clock import aware
from models.tables import Author, Post, PostKind, Reply, ReplyKind, SlaEvent
from responder.assign import assign_pending
from responder.care import CareOptions, care_sweep, stop_updates
from responder.drafts import DraftContext, asks_for_dm, find_order, greeting_name, suggest_reply
from responder.forecast import PromiseRules
from tests.support.factories import scored_post, staff

OPTIONS = CareOptions(satisfaction=False)


def _dm(session: Session, **kw: object) -> Post:
    return scored_post(session, kind=PostKind.DM, complaint=0.2, sentiment="neutral", **kw)  # type: ignore[arg-type]


def _replies(session: Session, post: Post, kind: str) -> list[Reply]:
    query = select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == kind).order_by(col(Reply.id))
    return list(session.execute(query).scalars())


def test_an_old_dm_is_promised_a_forecast_not_its_past_due_time(session: Session) -> None:
    staff(session, "Lucía Romero")
    # Six hours old: its SLA target passed long ago, which made "en menos de 1 minutos" before.
    post = _dm(session, language="es", age_s=6 * 3600, text="mi pedido #5521 no llega")
    assign_pending(session)
    result = care_sweep(session, options=OPTIONS)
    session.commit()
    assert result.acks == [post.id]
    ack = _replies(session, post, ReplyKind.ACK)[0]
    assert ack.promised_at is not None and post.promised_at is not None
    made = aware(ack.created_at)
    assert aware(ack.promised_at) - made >= timedelta(minutes=15)
    assert "en menos de 15 minutos" in ack.text and "Lucía" in ack.text and "pedido #5521" in ack.text
    assert post.promise_basis is not None and post.promise_basis["lane"] == "other"
    assert {"ahead", "handle_s", "margin", "floor_s", "forecast_at"} <= set(post.promise_basis)
    assert not asks_for_dm(ack.text)


def test_no_delay_update_before_the_promise_passes_then_one_with_a_new_forecast(session: Session) -> None:
    staff(session, "Priya Shah", languages="en")
    post = _dm(session, age_s=6 * 3600)
    assign_pending(session)
    care_sweep(session, options=OPTIONS)
    session.commit()
    promised = aware(post.promised_at)  # type: ignore[arg-type]
    # Inside the first promise window nothing is sent, however old the post is.
    assert care_sweep(session, options=OPTIONS, now=promised - timedelta(seconds=1)).updates == []
    later = promised + timedelta(minutes=1)
    assert care_sweep(session, options=OPTIONS, now=later).updates == [post.id]
    session.commit()
    update = _replies(session, post, ReplyKind.UPDATE)[0]
    assert "taking longer" in update.text and update.promised_at is not None
    assert aware(update.promised_at) >= later + timedelta(minutes=15)
    event = session.execute(select(SlaEvent)).scalar_one()
    assert event.kind == "promise_slipped" and aware(event.due_at) == promised and "basis" in event.detail
    # Once per promise: the same moment again sends nothing; the new promise has its own window.
    assert care_sweep(session, options=OPTIONS, now=later).updates == []
    assert care_sweep(session, options=OPTIONS, now=aware(update.promised_at) - timedelta(seconds=1)).updates == []


def test_staff_can_stop_the_delay_updates_of_a_post(session: Session) -> None:
    agent = staff(session, "Priya Shah", languages="en")
    post = _dm(session)
    assign_pending(session)
    care_sweep(session, options=OPTIONS)
    session.commit()
    stop_updates(session, post_id=post.id, staff=agent)  # type: ignore[arg-type]
    session.commit()
    later = aware(post.promised_at) + timedelta(hours=1)  # type: ignore[arg-type]
    assert care_sweep(session, options=OPTIONS, now=later).updates == []
    assert _replies(session, post, ReplyKind.UPDATE) == []
    with pytest.raises(LookupError):
        stop_updates(session, post_id=999_999, staff=agent)


def test_the_floor_is_a_setting(session: Session) -> None:
    staff(session, "Priya Shah", languages="en")
    post = _dm(session)
    assign_pending(session)
    care_sweep(session, options=CareOptions(satisfaction=False, promises=PromiseRules(floor_s=2 * 3600)))
    session.commit()
    assert "within 2 hours" in _replies(session, post, ReplyKind.ACK)[0].text


def test_suggestions_in_a_dm_never_ask_for_a_dm_and_public_ones_move_details_to_private(session: Session) -> None:
    staff(session, "Sam Carter", languages="en")
    dm = _dm(session, text="where is my order?")
    dm_complaint = scored_post(session, kind=PostKind.DM, network="facebook", text="order 778812 is broken")
    public = scored_post(session, text="my order never arrived")
    assign_pending(session)
    session.commit()
    dm_text = _replies(session, dm, ReplyKind.ANSWER)[0].text
    complaint_text = _replies(session, dm_complaint, ReplyKind.ANSWER)[0].text
    public_text = _replies(session, public, ReplyKind.ANSWER)[0].text
    assert not asks_for_dm(dm_text) and not asks_for_dm(complaint_text)
    assert "order #778812" in complaint_text
    assert asks_for_dm(public_text) and "direct message" in public_text
    assert all(_replies(session, p, ReplyKind.ANSWER)[0].promised_at is not None for p in (dm, public))


def test_an_edited_saved_reply_asking_for_a_dm_loses_that_sentence_in_a_dm() -> None:
    from responder.drafts import SavedReplyBook

    book = SavedReplyBook()
    book.texts[("en", "other", "any", "any")] = "Hi{name}, thanks! Please send us a DM with details. {agent} is on it."
    ctx = DraftContext(language="en", sentiment="neutral", complaint=0.0, crisis=False, is_question=False,
                       username="carlos_mx64", agent="Sam", network="x", sla_text="1 hour", name="Carlos_Mx64",
                       private=True)  # fmt: skip
    text = suggest_reply(ctx, book)
    assert text == "Hi there, thanks! Sam is on it."  # no bare "Hi,", no handle, no DM request


def test_greetings_use_names_never_handles() -> None:
    assert greeting_name("Ana García", "ana_g") == "Ana"
    assert greeting_name("Carlos_Mx64", "carlos_mx64") == ""
    assert greeting_name("Jen Smith", "jen_smith") == ""  # the network's title-cased handle, not a name
    assert greeting_name("Lucia Mr12", "lucia_mr12") == ""
    assert greeting_name("", "x") == "" and greeting_name("@brand", "") == ""
    assert greeting_name("José-Luis Peña", "jl") == "José-Luis"


def test_order_and_case_numbers_are_found_in_the_text() -> None:
    assert find_order("my order #5521 never came") == "#5521"
    assert find_order("pedido nº 123456 sin llegar") == "#123456"
    assert find_order("case AB-778 still open") == "#AB-778"
    assert find_order("I waited 2 days") == "" and find_order("") == ""


def test_messenger_drafts_fit_the_send_apis_limit() -> None:
    from responder.drafts import SavedReplyBook

    book = SavedReplyBook()
    book.texts[("en", "other", "any", "any")] = "{greet}" + "long words " * 400
    ctx = DraftContext(language="en", sentiment="neutral", complaint=0.0, crisis=False, is_question=False,
                       username="", agent="Sam", network="facebook", sla_text="1 hour", private=True)  # fmt: skip
    assert len(suggest_reply(ctx, book)) <= 2000
    public = DraftContext(language="en", sentiment="neutral", complaint=0.0, crisis=False, is_question=False,
                          username="", agent="Sam", network="facebook", sla_text="1 hour")  # fmt: skip
    assert 2000 < len(suggest_reply(public, book)) <= 8000


def test_authors_stay_as_stored(session: Session) -> None:
    post = scored_post(session)
    assert session.get(Author, post.author_id) is not None


def test_a_public_reply_may_not_show_the_customers_personal_data(session: Session) -> None:
    from responder.actions import InvalidReply, submit_reply

    agent = staff(session, "Sam Carter", languages="en")
    public = scored_post(session, text="call me on +34 612 345 678 or ana@example.com, order 12345")
    dm = scored_post(session, kind=PostKind.DM, text="call me on +34 612 345 678")
    assign_pending(session)
    session.commit()
    reply_id = _replies(session, public, ReplyKind.ANSWER)[0].id
    for text in ("We'll call you on +34 612-345-678 today", "We wrote to ana@example.com",
                 "Your card 4111 1111 1111 1111 was refunded"):  # fmt: skip
        with pytest.raises(InvalidReply, match="direct message"):
            submit_reply(session, reply_id=reply_id, staff=agent, text=text)  # type: ignore[arg-type]
    # The brand's own address and the order number are fine in public; in a DM the customer's number is too.
    submit_reply(session, reply_id=reply_id, staff=agent, text="Order 12345: write to help@brand.example")  # type: ignore[arg-type]
    dm_reply = _replies(session, dm, ReplyKind.ANSWER)[0].id
    submit_reply(session, reply_id=dm_reply, staff=agent, text="We'll call you on +34 612 345 678")  # type: ignore[arg-type]
