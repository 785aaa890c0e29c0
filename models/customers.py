"""Customers: every network identity (``Author``) belongs to one person, made when the identity is first stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlmodel import Session, col

from models.tables import Author, Customer, Post, PostStatus, Satisfaction, utcnow

# SQLModel does not declare ``__table__`` for type checkers; the Core tables behind the models.
CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]
AUTHORS: Table = Author.__table__  # type: ignore[attr-defined]

# A bad rating is remembered this long when ranking the customer's new posts.
BAD_RATING_WINDOW = timedelta(days=30)
BAD_RATING_MAX = 2  # 1 or 2 out of 5
# Open work: what a person still has to answer.
OPEN_STATUSES = (PostStatus.SCORED, PostStatus.ASSIGNED, PostStatus.ESCALATED)


def ensure_customers(session: Session, author_ids: Iterable[int]) -> dict[int, int]:
    """Give each author in ``author_ids`` that has none a customer of their own; return author id → customer id.

    Called in the transaction that stored the authors. On PostgreSQL the author upsert holds the row lock
    until commit, so two workers storing one new author do not both make a customer; the guarded UPDATE keeps
    the first one either way.
    """
    ids = sorted(set(author_ids))
    if not ids:
        return {}
    rows = session.execute(select(col(Author.id), col(Author.customer_id)).where(col(Author.id).in_(ids))).all()
    found = {int(a): c for a, c in rows}
    missing = [a for a, c in found.items() if c is None]
    if missing:
        # Batched: a page of 100 new authors costs one INSERT and one UPDATE, not 200 round trips.
        now = utcnow()
        made = session.execute(
            insert(CUSTOMERS).returning(CUSTOMERS.c.id, sort_by_parameter_order=True),
            [{"created_at": now} for _ in missing],
        )
        pairs = [{"aid": a, "cid": int(c)} for a, c in zip(missing, made.scalars(), strict=True)]
        session.execute(
            update(AUTHORS)
            .where(AUTHORS.c.id == bindparam("aid"), AUTHORS.c.customer_id.is_(None))
            .values(customer_id=bindparam("cid")),
            pairs,
        )
    if missing:
        rows = session.execute(select(col(Author.id), col(Author.customer_id)).where(col(Author.id).in_(ids))).all()
        found = {int(a): c for a, c in rows}
    return {a: int(c) for a, c in found.items() if c is not None}


def customer_of_author(session: Session, author_id: int) -> int | None:
    """Return the customer of one author, making one if it has none; None for an unknown author."""
    return ensure_customers(session, [author_id]).get(author_id)


def authors_of_customers(session: Session, customer_ids: Iterable[int]) -> dict[int, list[int]]:
    """Return, for each customer, the ids of its network identities (oldest first)."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    out: dict[int, list[int]] = {c: [] for c in wanted}
    stmt = (
        select(col(Author.customer_id), col(Author.id))
        .where(col(Author.customer_id).in_(wanted))
        .order_by(col(Author.id))
    )
    for customer_id, author_id in session.execute(stmt).all():
        out[int(customer_id)].append(int(author_id))
    return out


@dataclass(frozen=True, slots=True)
class CustomerSignals:
    """What a customer's history says about one of their new posts: other open cases, a recent bad rating."""

    open_cases: int = 0
    bad_rating: int | None = None  # the lowest rating in the window, when it is bad


def customer_signals(
    session: Session, posts: Sequence[tuple[int, int | None, str | None]], *, now: datetime | None = None
) -> dict[int, CustomerSignals]:
    """Return, per post in ``posts`` ((post id, author id, conversation id) triples), its customer's other open
    cases (posts of another conversation) and recent bad rating.

    Three queries for a whole batch: the authors' customers, the customers' open posts, their recent ratings.
    """
    now = now or utcnow()
    by_author = {a: p for p, a, _ in posts if a is not None}
    if not by_author:
        return {}
    customers = {
        int(a): int(c)
        for a, c in session.execute(
            select(col(Author.id), col(Author.customer_id)).where(
                col(Author.id).in_(list(by_author)), col(Author.customer_id).is_not(None)
            )
        ).all()
    }
    if not customers:
        return {}
    siblings = select(col(Author.id)).where(col(Author.customer_id).in_(set(customers.values())))
    open_rows = session.execute(
        select(col(Author.customer_id), col(Post.id), col(Post.conversation_id))
        .join(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.author_id).in_(siblings),
            col(Post.needs_response).is_(True),
            col(Post.status).in_(list(OPEN_STATUSES)),
        )
    ).all()
    open_by_customer: dict[int, set[tuple[int, str | None]]] = {}
    for customer_id, post_id, conversation in open_rows:
        open_by_customer.setdefault(int(customer_id), set()).add((int(post_id), conversation))
    ratings = session.execute(
        select(col(Author.customer_id), func.min(col(Satisfaction.score)))
        .join(Post, col(Post.id) == col(Satisfaction.post_id))
        .join(Author, col(Author.id) == col(Post.author_id))
        .where(
            col(Post.author_id).in_(siblings),
            col(Satisfaction.score).is_not(None),
            col(Satisfaction.answered_at) >= now - BAD_RATING_WINDOW,
        )
        .group_by(col(Author.customer_id))
    ).all()
    worst = {int(c): int(s) for c, s in ratings if s is not None}
    out: dict[int, CustomerSignals] = {}
    for post_id, author_id, conversation_id in posts:
        customer = customers.get(author_id) if author_id is not None else None
        if customer is None:
            continue
        # Another message of the same conversation is the same case, not another one.
        others = {
            p for p, c in open_by_customer.get(customer, set()) if p != post_id and (c is None or c != conversation_id)
        }
        rating = worst.get(customer)
        out[post_id] = CustomerSignals(
            open_cases=len(others), bad_rating=rating if rating is not None and rating <= BAD_RATING_MAX else None
        )
    return out


# Points a customer's history adds to a post's urgency, so the queue (ranked by urgency) puts them higher.
OPEN_CASE_POINTS = 10
BAD_RATING_POINTS = 15


def customer_boost(signals: CustomerSignals | None) -> tuple[int, list[str]]:
    """Return the urgency points a customer's history adds and the reasons, in the classifier's reason words."""
    if signals is None:
        return 0, []
    points, reasons = 0, []
    if signals.open_cases:
        points += OPEN_CASE_POINTS
        reasons.append(f"customer open cases {signals.open_cases}")
    if signals.bad_rating is not None:
        points += BAD_RATING_POINTS
        reasons.append(f"customer rated {signals.bad_rating}/5")
    return points, reasons
