"""What a queue card says about the person behind it: a link to their page, and the order numbers they keep
writing about ("this customer wrote 3 times about order #5521"), for a whole page of cards in three queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlmodel import Session, col

from models.tables import Author, Post
from responder.references import references
from review_app.i18n import t
from review_app.safe import md

# A card mentions a number only once the customer has written about it more than once.
MIN_MENTIONS = 2
MAX_MATCHING_POSTS = 2000


@dataclass(frozen=True, slots=True)
class CardCustomer:
    """The customer behind one card and how often they wrote about each order number in the card's text."""

    customer_id: int | None
    author_id: int | None
    mentions: dict[str, int] = field(default_factory=dict)


def card_customers(session: Session, cards: Sequence[tuple[int, int | None, str]]) -> dict[int, CardCustomer]:
    """Return, per post id of ``cards`` ((post id, author id, text) triples), its customer facts."""
    author_ids = {a for _, a, _ in cards if a is not None}
    customers: dict[int, int] = {}
    if author_ids:
        rows = session.execute(
            select(col(Author.id), col(Author.customer_id)).where(col(Author.id).in_(author_ids))
        ).all()
        customers = {int(a): int(c) for a, c in rows if c is not None}
    wanted: dict[int, set[str]] = defaultdict(set)  # customer -> numbers named on this page's cards
    for _, author_id, text in cards:
        customer = customers.get(author_id) if author_id is not None else None
        if customer is not None:
            wanted[customer].update(references(text))
    counts: dict[tuple[int, str], int] = defaultdict(int)
    numbers = sorted({n for refs in wanted.values() for n in refs})
    if numbers:
        stmt = (
            select(col(Author.customer_id), col(Post.text))
            .join(Author, col(Author.id) == col(Post.author_id))
            .where(
                col(Author.customer_id).in_([c for c, refs in wanted.items() if refs]),
                or_(*[col(Post.text).contains(n) for n in numbers[:50]]),
            )
            .limit(MAX_MATCHING_POSTS)
        )
        for customer, text in session.execute(stmt).all():
            for ref in set(references(text)) & wanted.get(int(customer), set()):
                counts[(int(customer), ref)] += 1
    out: dict[int, CardCustomer] = {}
    for post_id, author_id, text in cards:
        customer = customers.get(author_id) if author_id is not None else None
        mentions = {
            ref: counts[(customer, ref)]
            for ref in references(text)
            if customer is not None and counts[(customer, ref)] >= MIN_MENTIONS
        }
        out[post_id] = CardCustomer(customer_id=customer, author_id=author_id, mentions=mentions)
    return out


def card_target(facts: CardCustomer | None) -> str | None:
    """The customer page's address for a card (relative, so it works under any path); None without an author."""
    if facts is None or facts.author_id is None:
        return None
    if facts.customer_id is not None:
        return f"customer?id={facts.customer_id}"
    return f"customer?author={facts.author_id}"


def card_line(lang: str, facts: CardCustomer | None) -> str:
    """The card's line about the order numbers the customer keeps writing about, as safe markdown (no links)."""
    if facts is None:
        return ""
    return " · ".join(
        f":violet[:material/receipt_long: **{t(lang, 'customer_card_refs', n=n, ref=md(ref))}**]"
        for ref, n in sorted(facts.mentions.items())
    )
