"""Customers on SQLite and PostgreSQL: one per new identity, link and unlink (audited), suggestions that never
merge by themselves, tags and notes, permissions, and the ranking that a customer's history lifts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from classifier.pipeline import score_pending
from models.customers import ensure_customers
from models.store import save_posts
from models.tables import Author, Customer, CustomerLink, CustomerNote, CustomerTag, Post, Satisfaction, Score, utcnow
from responder.customers import CustomerError, add_note, add_tag, link_identity, remove_tag, unlink_identity
from responder.link_suggestions import fold, suggest_links
from responder.permissions import NotAllowed
from responder.references import references
from review_app.customer_data import load_customer
from tests.support.customers import store_person
from tests.support.factories import staff
from tests.support.incoming import incoming


def test_every_stored_identity_gets_a_customer_of_its_own(session: Session) -> None:
    save_posts(session, [incoming("a1", author="ana"), incoming("a2", author="ana"), incoming("b1", author="bo")])
    session.commit()
    rows = session.execute(select(col(Author.username), col(Author.customer_id))).all()
    customers = dict(rows)
    assert set(customers) == {"ana", "bo"} and None not in customers.values()
    assert customers["ana"] != customers["bo"]
    assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 2
    # Storing the same author again makes no second customer.
    save_posts(session, [incoming("a3", author="ana")])
    session.commit()
    assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 2


def test_linking_x_and_facebook_shares_one_history_and_unlinking_restores_both(session: Session) -> None:
    lucia = staff(session, "Lucia Manager", role="manager")
    marta = staff(session, "Marta Agent", role="agent")
    p = store_person(session)
    assert p.x_customer != p.fb_customer
    before_x = load_customer(session, p.x_customer, with_suggestions=False)
    assert before_x is not None
    assert {m.post_id for c in before_x.conversations for m in c.messages} == set(p.x_posts)

    link_identity(session, staff=marta, customer_id=p.x_customer, author_id=p.fb_author, basis="order #5521")
    session.commit()
    merged = load_customer(session, p.x_customer, with_suggestions=False)
    assert merged is not None
    assert {i.network for i in merged.identities} == {"x", "facebook"}
    assert {m.post_id for c in merged.conversations for m in c.messages} == set(p.x_posts + p.fb_posts)
    # The two X DMs are one conversation; the mention and the comment are their own.
    assert sorted(len(c.messages) for c in merged.conversations) == [1, 1, 2]
    assert merged.references["5521"] == 3
    emptied = load_customer(session, p.fb_customer, with_suggestions=False)
    assert emptied is not None and emptied.identities == [] and emptied.conversations == []

    unlink_identity(session, staff=lucia, author_id=p.fb_author)
    session.commit()
    x_again = load_customer(session, p.x_customer, with_suggestions=False)
    fb_again = load_customer(session, p.fb_customer, with_suggestions=False)
    assert x_again is not None and fb_again is not None
    assert {m.post_id for c in x_again.conversations for m in c.messages} == set(p.x_posts)
    # The Facebook identity goes back to the customer it came from, with its own history.
    assert {m.post_id for c in fb_again.conversations for m in c.messages} == set(p.fb_posts)
    assert [i.author_id for i in fb_again.identities] == [p.fb_author]

    audit = session.execute(select(CustomerLink).order_by(col(CustomerLink.id))).scalars().all()
    assert [(a.action, a.staff_id, a.author_id, a.from_customer_id, a.to_customer_id) for a in audit] == [
        ("link", marta.id, p.fb_author, p.fb_customer, p.x_customer),
        ("unlink", lucia.id, p.fb_author, p.x_customer, p.fb_customer),
    ]
    assert audit[0].basis == "order #5521"
    shown = load_customer(session, p.x_customer, with_suggestions=False)
    assert shown is not None and [(row[1], row[2]) for row in shown.links] == [
        ("unlink", "Lucia Manager"),
        ("link", "Marta Agent"),
    ]


def test_suggestions_name_the_evidence_and_never_merge(session: Session) -> None:
    p = store_person(session, x_name="Carlos Ruiz", fb_name="carlos  ruíz")
    suggestions = suggest_links(session, customer_id=p.x_customer)
    assert [s.author_id for s in suggestions] == [p.fb_author]
    top = suggestions[0]
    assert top.same_name and top.shared_references == ("5521",) and top.strong
    # Nothing was linked by suggesting: both still have their own customer and no audit row exists.
    fb = session.get(Author, p.fb_author)
    assert fb is not None and fb.customer_id == p.fb_customer
    assert session.execute(select(func.count()).select_from(CustomerLink)).scalar_one() == 0
    # A person with another name and no shared order is not suggested; an order number alone is.
    assert p.stranger_author not in {s.author_id for s in suggestions}
    lone = suggest_links(session, customer_id=p.fb_customer)
    assert [s.author_id for s in lone] == [p.x_author]


def test_staff_only_and_errors_lose_nothing(session: Session) -> None:
    noa = staff(session, "Noa Marketing", role="marketing")
    ana = staff(session, "Ana Agent", role="agent")
    p = store_person(session)
    with pytest.raises(NotAllowed):
        link_identity(session, staff=noa, customer_id=p.x_customer, author_id=p.fb_author)
    with pytest.raises(NotAllowed):
        add_note(session, staff=noa, customer_id=p.x_customer, text="hola")
    with pytest.raises(NotAllowed):
        unlink_identity(session, staff=noa, author_id=p.x_author)
    with pytest.raises(CustomerError):
        unlink_identity(session, staff=ana, author_id=p.x_author)  # its only identity
    with pytest.raises(CustomerError):
        link_identity(session, staff=ana, customer_id=p.x_customer, author_id=p.x_author)  # already there
    with pytest.raises(CustomerError):
        link_identity(session, staff=ana, customer_id=999_999, author_id=p.fb_author)
    with pytest.raises(CustomerError):
        add_note(session, staff=ana, customer_id=p.x_customer, text="   ")
    session.rollback()
    assert session.execute(select(func.count()).select_from(CustomerLink)).scalar_one() == 0
    fb = session.get(Author, p.fb_author)
    assert fb is not None and fb.customer_id == p.fb_customer


def test_tags_and_notes_follow_the_person_when_their_last_identity_is_linked(session: Session) -> None:
    ana = staff(session, "Ana Agent", role="agent")
    p = store_person(session)
    assert add_tag(session, staff=ana, customer_id=p.fb_customer, tag="  VIP ")
    assert not add_tag(session, staff=ana, customer_id=p.fb_customer, tag="VIP")
    add_tag(session, staff=ana, customer_id=p.x_customer, tag="VIP")
    add_tag(session, staff=ana, customer_id=p.x_customer, tag="reported a safety issue")
    add_note(session, staff=ana, customer_id=p.fb_customer, text="prefers Spanish; call after 18:00")
    session.commit()
    link_identity(session, staff=ana, customer_id=p.x_customer, author_id=p.fb_author)
    session.commit()
    page = load_customer(session, p.x_customer, with_suggestions=False)
    assert page is not None
    assert page.tags == ["VIP", "reported a safety issue"]
    assert [text for _, _, text in page.notes] == ["prefers Spanish; call after 18:00"]
    assert remove_tag(session, staff=ana, customer_id=p.x_customer, tag="VIP")
    session.commit()
    assert session.execute(select(func.count()).select_from(CustomerTag)).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(CustomerNote)).scalar_one() == 1


def test_a_customer_with_an_open_case_or_a_bad_rating_ranks_higher_with_a_reason(session: Session) -> None:
    save_posts(session, [incoming("old", "my order #5521 never arrived", author="ana", kind="mention")])
    save_posts(session, [incoming("rated", "thanks", author="bo", kind="mention")])
    session.commit()
    assert score_pending(session, LexiconScorer()) == 2
    session.commit()
    rated = session.execute(select(Post).where(col(Post.external_id) == "rated")).scalar_one()
    session.add(Satisfaction(post_id=rated.id, score=1, answered_at=utcnow() - timedelta(days=1)))
    session.commit()
    same_text = "my order #9999 never arrived"
    save_posts(session, [incoming("ana2", same_text, author="ana"), incoming("bo2", same_text, author="bo"),
                         incoming("cy1", same_text, author="cy")])  # fmt: skip
    session.commit()
    assert score_pending(session, LexiconScorer()) == 3
    session.commit()

    def urgency_and_reasons(ext: str) -> tuple[int, int, list[str]]:
        post, score = session.execute(
            select(Post, Score).join(Score, col(Score.post_id) == col(Post.id)).where(col(Post.external_id) == ext)
        ).one()
        return int(post.urgency), score.urgency, list(score.reasons)

    plain_u, plain_model, plain_reasons = urgency_and_reasons("cy1")
    ana_u, ana_model, ana_reasons = urgency_and_reasons("ana2")
    bo_u, bo_model, bo_reasons = urgency_and_reasons("bo2")
    assert plain_u == plain_model == ana_model == bo_model
    assert ana_u > plain_u and "customer open cases 1" in ana_reasons
    assert bo_u > plain_u and "customer rated 1/5" in bo_reasons
    assert not any(r.startswith("customer") for r in plain_reasons)


def test_references_and_name_folding() -> None:
    assert references("my order #5521 never arrived, pedido 5521 y caso nº 778812") == ["5521", "778812"]
    assert references("call me at 555-1234, I waited 2 days #1") == []
    assert fold("Carlos_Ruíz ") == fold("carlos  ruiz") == "carlos ruiz"


def test_ensure_customers_fills_identities_stored_without_one(session: Session) -> None:
    author = Author(network="x", external_id="legacy", username="legacy")
    session.add(author)
    session.commit()
    assert author.customer_id is None and author.id is not None
    made = ensure_customers(session, [author.id])
    session.commit()
    session.refresh(author)
    assert made == {author.id: author.customer_id} and author.customer_id is not None


def test_a_follow_up_in_the_same_conversation_is_not_another_open_case(session: Session) -> None:
    first = replace(incoming("d1", "my order #4411 is late", author="dy", kind="dm"), conversation_id="c1")
    save_posts(session, [first])
    session.commit()
    assert score_pending(session, LexiconScorer()) == 1
    session.commit()
    follow_up = replace(incoming("d2", "my order #4411 is late", author="dy", kind="dm"), conversation_id="c1")
    elsewhere = replace(incoming("d3", "my order #4411 is late", author="dy", kind="mention"), conversation_id="c2")
    save_posts(session, [follow_up, elsewhere])
    session.commit()
    assert score_pending(session, LexiconScorer()) == 2
    session.commit()
    reasons = {
        post.external_id: list(score.reasons)
        for post, score in session.execute(select(Post, Score).join(Score, col(Score.post_id) == col(Post.id))).all()
    }
    assert not any(r.startswith("customer") for r in reasons["d2"])
    assert "customer open cases 1" in reasons["d3"]
