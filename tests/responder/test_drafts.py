"""Suggested replies: saved replies by type and tone, variables, and X's weighted 280 limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import Reply, SavedReply
from networks.x.text import truncate_x, weighted_length
from responder.actions import InvalidReply, validate_text
from responder.assign import assign_pending
from responder.drafts import DraftContext, SavedReplyBook, edit_saved_reply, ensure_saved_replies, suggest_reply
from tests.support.factories import scored_post, staff


def ctx(**kw: object) -> DraftContext:
    base: dict[str, object] = {
        "language": "en", "sentiment": "negative", "complaint": 0.8, "crisis": False, "is_question": False,
        "username": "ana_g", "agent": "Sam", "network": "x", "sla_text": "1 hour", "name": "Ana García",
    }  # fmt: skip
    base.update(kw)
    return DraftContext(**base)  # type: ignore[arg-type]


def test_x_counts_urls_as_23_and_emoji_and_cjk_as_two() -> None:
    assert weighted_length("hola ñandú") == 10
    assert weighted_length("https://example.com/a/very/long/path/indeed?x=1") == 23
    assert weighted_length("😀") == 2 and weighted_length("👩‍💻") == 2 and weighted_length("🇪🇸") == 2
    assert weighted_length("日本") == 4


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=600))
def test_truncation_always_fits_x(text: str) -> None:
    assert weighted_length(truncate_x(text)) <= 280


def test_x_limit_is_checked_by_weight_not_by_len() -> None:
    assert validate_text("ñ" * 280, network="x")
    try:
        validate_text("日" * 141, network="x")  # 141 characters, 282 by X's count
    except InvalidReply as exc:
        assert "282" in str(exc)
    else:
        raise AssertionError("141 CJK characters must be refused on X")
    assert validate_text("日" * 141, network="facebook")


def test_type_and_tone_choose_the_saved_reply() -> None:
    complaint = suggest_reply(ctx())
    upset = suggest_reply(ctx(p_negative=0.95))
    praise = suggest_reply(ctx(sentiment="positive", complaint=0.0))
    question = suggest_reply(ctx(sentiment="neutral", complaint=0.1, is_question=True))
    assert complaint.startswith("Hi Ana, we're sorry") and "Sam" in complaint and "within 1 hour" in complaint
    assert "really sorry" in upset and "own your case" in upset  # apology, who owns it, when, next step
    assert "direct message" in upset  # a public thread moves the details to a private channel
    assert "kind words" in praise and "sorry" not in praise
    assert "question" in question
    # A display name that is only a handle gets a neutral greeting, never a bare "Hi,".
    assert suggest_reply(ctx(network="facebook", name="Carlos_Mx64", username="")).startswith("Hi there, we're")


def test_spanish_post_gets_spanish_reply() -> None:
    text = suggest_reply(ctx(language="es", sla_text="1 hora"))
    assert text.startswith("Hola Ana,") and "sentimos" in text and "en menos de 1 hora" in text


def test_edited_saved_replies_are_used_and_broken_ones_do_not_break_the_sweep(session: Session) -> None:
    assert ensure_saved_replies(session) > 0
    session.commit()
    assert ensure_saved_replies(session) == 0  # idempotent
    row = session.execute(
        select(SavedReply).where(col(SavedReply.language) == "en", col(SavedReply.reply_type) == "complaint",
                                 col(SavedReply.tone) == "any")
    ).scalar_one()  # fmt: skip
    edit_saved_reply(
        session,
        saved_reply_id=row.id,
        text="{greet}so sorry{name}! {agent} here, {unknown}back in {sla}.",
        actor="staff:1",
    )  # type: ignore[arg-type]
    session.commit()
    text = suggest_reply(ctx(), SavedReplyBook.load(session))
    assert text == "Hi Ana, so sorry Ana! Sam here, back in 1 hour."
    staff(session, "Sam Carter", languages="en")
    post = scored_post(session, sentiment="negative", complaint=0.9)
    assign_pending(session)
    session.commit()
    reply = session.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
    assert "so sorry" in reply.text and reply.suggested_text == reply.text


def test_long_saved_reply_is_cut_to_fit_x() -> None:
    book = SavedReplyBook()
    book.texts[("en", "complaint", "any", "any")] = "{greet}" + "sorry, " * 80 + "https://help.example.com/orders"
    text = suggest_reply(ctx(), book)
    assert weighted_length(text) <= 280 and text.endswith("…")
    assert len(suggest_reply(ctx(network="facebook"), book)) > 280  # other networks are not cut
