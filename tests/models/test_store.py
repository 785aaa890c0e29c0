"""Storing fetched posts (dedup, threads, cursor) and the scoring stage, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from classifier.base import PostFacts, PostScore
from classifier.lexicon_scorer import LexiconScorer
from classifier.pipeline import score_pending
from ground.db import make_engine
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


def test_an_unchanged_author_is_read_not_rewritten(session: Session) -> None:
    save_posts(session, [incoming("1")])
    session.commit()
    stored = session.execute(select(Author.updated_at, Author.customer_id)).one()
    save_posts(session, [incoming("2")])  # the same author, the same profile
    session.commit()
    assert session.execute(select(Author.updated_at, Author.customer_id)).one() == stored
    save_posts(session, [incoming("3", followers=7)])  # the profile changed: written
    session.commit()
    changed = session.execute(select(Author.updated_at, Author.followers_count, Author.customer_id)).one()
    assert (changed.updated_at >= stored.updated_at, changed.followers_count) == (True, 7)
    assert changed.customer_id == stored.customer_id
    assert [p.author_id for p in session.execute(select(Post).order_by(col(Post.id))).scalars()] == [1, 1, 1]


def test_a_stored_author_without_a_customer_gets_one_though_unchanged(session: Session) -> None:
    save_posts(session, [incoming("1")])
    session.commit()
    author = session.execute(select(Author)).scalar_one()
    author.customer_id = None  # as stored before customers existed
    session.add(author)
    session.commit()
    save_posts(session, [incoming("2")])
    session.commit()
    session.refresh(author)
    assert author.customer_id is not None


def test_a_batch_larger_than_one_statement_keeps_every_author(session: Session) -> None:
    # Past the 500 keys of one IN (…) and the 1,000 rows SQLAlchemy sends in one INSERT … RETURNING.
    posts = [incoming(str(i), author=f"u{i}") for i in range(1, 1201)]
    first = save_posts(session, posts)
    session.commit()
    again = save_posts(session, posts)
    session.commit()
    assert (first.inserted, again.inserted, again.duplicates) == (1200, 0, 1200)
    rows = session.execute(select(Post.external_id, Author.external_id).join(Author)).all()
    assert len(rows) == 1200 and all(author == f"u{post}" for post, author in rows)


@pytest.fixture
def one_post_pg(pg_url: str) -> Iterator[Engine]:
    """PostgreSQL with post "1" by author u1 stored, for the tests of two writers at once."""
    engine = make_engine(pg_url)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as first:
        save_posts(first, [incoming("1")])
        first.commit()
    yield engine
    engine.dispose()


def _impatient(session: Session) -> Session:
    # A wait on another transaction's row lock fails within a second instead of passing unseen.
    session.execute(text("SET LOCAL lock_timeout = '1s'"))
    return session


def test_a_reply_to_a_post_being_scored_is_linked_without_waiting(one_post_pg: Engine) -> None:
    # The scoring batch holds its posts until it commits; a reply to one of them comes in by webhook meanwhile.
    stored: list[int] = []

    class Meanwhile(LexiconScorer):
        def score(self, posts: list[PostFacts]) -> list[PostScore]:
            with Session(one_post_pg) as hook:
                stored.append(save_posts(_impatient(hook), [incoming("2", reply_to="1")]).inserted)
                hook.commit()
            return super().score(posts)

    with Session(one_post_pg) as worker:
        assert score_pending(worker, Meanwhile()) == 1
        worker.commit()
    with Session(one_post_pg) as check:
        by_ext = {p.external_id: p for p in check.execute(select(Post)).scalars()}
    assert stored == [1] and by_ext["2"].parent_id == by_ext["1"].id


def test_two_writers_of_one_known_author_do_not_queue(one_post_pg: Engine) -> None:
    # Why the read comes first: a poll left open after storing a page must not hold up the webhook writer.
    with Session(one_post_pg) as poll, Session(one_post_pg) as hook:
        save_posts(poll, [incoming("2")])  # open, not committed
        stored = save_posts(_impatient(hook), [incoming("3")])  # would wait for poll's row lock, then time out
        hook.commit()
        poll.commit()
    assert stored.inserted == 1
    with Session(one_post_pg) as check:
        assert check.execute(select(func.count()).select_from(Author)).scalar_one() == 1


def test_a_post_being_scored_is_found_stored_without_waiting(one_post_pg: Engine) -> None:
    # A webhook delivery late behind the poll: the worker scoring the post holds its row until it commits.
    with Session(one_post_pg) as worker, Session(one_post_pg) as hook:
        post = worker.execute(select(Post).with_for_update()).scalar_one()
        post.status = PostStatus.SCORED
        worker.add(post)
        worker.flush()  # updated, not committed
        again = save_posts(_impatient(hook), [incoming("1"), incoming("2")])
        hook.commit()
        worker.commit()
    assert (again.inserted, again.duplicates) == (1, 1)


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
