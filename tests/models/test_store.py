"""Storing fetched posts (dedup, threads, cursor) and the scoring stage, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from classifier.pipeline import score_pending
from models.store import Delivery, get_cursor, record_deliveries, record_fetch, save_posts
from models.tables import Author, Post, PostStatus, Score, WebhookDelivery
from tests.support.incoming import incoming

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_posts_are_unique_by_network_and_id_and_authors_are_updated(session: Session) -> None:
    first = save_posts(session, [incoming("1"), incoming("2"), incoming("1")])
    session.commit()
    again = save_posts(
        session, [incoming("2", followers=99), incoming("3", author="u3"), incoming("1", network="facebook")]
    )
    session.commit()
    assert (first.inserted, first.duplicates) == (2, 1)
    assert (again.inserted, again.duplicates) == (2, 1)
    assert session.execute(select(func.count()).select_from(Post)).scalar_one() == 4
    x_author = session.execute(
        select(Author).where(col(Author.external_id) == "u1", col(Author.network) == "x")
    ).scalar_one()
    assert x_author.followers_count == 99


def test_replies_link_to_parents_in_either_order(session: Session) -> None:
    save_posts(session, [incoming("20", reply_to="10")])  # the child arrives first
    save_posts(session, [incoming("10"), incoming("30", reply_to="10")])
    session.commit()
    by_id = {p.external_id: p for p in session.execute(select(Post)).scalars()}
    assert by_id["20"].parent_id == by_id["10"].id
    assert by_id["30"].parent_id == by_id["10"].id
    assert by_id["10"].parent_id is None


def test_cursor_moves_only_with_its_posts(session: Session) -> None:
    record_fetch(session, network="x", source="mentions", posts=[incoming("5")], next_cursor="5", seen_ids=["a"])
    session.rollback()  # a crash before commit: neither the post nor the cursor moved
    assert get_cursor(session, network="x", source="mentions").cursor is None
    assert session.execute(select(func.count()).select_from(Post)).scalar_one() == 0
    record_fetch(session, network="x", source="mentions", posts=[incoming("5")], next_cursor="5", seen_ids=["a"])
    session.commit()
    cursor = get_cursor(session, network="x", source="mentions")
    assert (cursor.cursor, cursor.seen_ids, cursor.posts_ingested, cursor.healthy) == ("5", ["a"], 1, True)


def test_scoring_decides_which_posts_are_work(session: Session) -> None:
    save_posts(session, [
        incoming("1", "@Escucha ok", kind="mention"),
        incoming("2", "nice weather today", kind="search"),
        incoming("3", "I will sue you, my data leaked and nobody answers", kind="search"),
        incoming("4", "New autumn collection!", kind="page_post"),
        incoming("5", "RT @Escucha: New autumn collection!", kind="share"),
        incoming("6", "thanks", kind="dm"),
        incoming("7", "x" * 100_000 + " refund now", kind="mention"),
    ])  # fmt: skip
    session.commit()
    assert score_pending(session, LexiconScorer(), limit=4) == 4
    assert score_pending(session, LexiconScorer(), limit=100) == 3
    assert score_pending(session, LexiconScorer()) == 0
    session.commit()
    status = {p.external_id: p.status for p in session.execute(select(Post)).scalars()}
    assert status == {
        "1": PostStatus.SCORED,  # addressed to the brand: answered unless a person dismisses it
        "2": PostStatus.NO_ACTION,
        "3": PostStatus.SCORED,  # a keyword hit in the crisis lane
        "4": PostStatus.NO_ACTION,
        "5": PostStatus.NO_ACTION,
        "6": PostStatus.SCORED,
        "7": PostStatus.SCORED,
    }
    crisis = session.execute(
        select(Score).join(Post, col(Post.id) == col(Score.post_id)).where(col(Post.external_id) == "3")
    ).scalar_one()
    assert crisis.crisis and crisis.urgency >= 80 and any("crisis" in r for r in crisis.reasons)


def test_deliveries_stored_together_count_as_if_stored_one_after_another(session: Session) -> None:
    before = record_deliveries(session, [Delivery("x", "d0", T, [incoming("1")])])
    session.commit()
    results = record_deliveries(
        session,
        [
            Delivery("x", "d1", T, [incoming("2"), incoming("3")]),
            Delivery("x", "d0", T, [incoming("9")]),  # logged by an earlier transaction: refused, 9 not stored
            Delivery("x", "d2", T, [incoming("3"), incoming("4")]),  # 3 came in d1 of this same group
            Delivery("x", "d1", T, [incoming("2"), incoming("3")]),  # the same delivery twice in one group
            Delivery("facebook", "d1", T, [incoming("2", network="facebook"), incoming("1")]),  # other network
        ],
    )
    session.commit()
    assert before[0] is not None and before[0].inserted == 1
    summary = [None if r is None else (r.inserted, r.duplicates) for r in results]
    assert summary == [(2, 0), None, (1, 1), None, (1, 1)]
    stored = sorted((p.network, p.external_id) for p in session.execute(select(Post)).scalars())
    assert stored == [("facebook", "2"), ("x", "1"), ("x", "2"), ("x", "3"), ("x", "4")]
    logged = {
        (d.network, d.delivery_id): (d.posts, d.inserted) for d in session.execute(select(WebhookDelivery)).scalars()
    }
    assert logged == {("x", "d0"): (1, 1), ("x", "d1"): (2, 2), ("x", "d2"): (2, 1), ("facebook", "d1"): (2, 1)}
