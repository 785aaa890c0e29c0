"""Likely links: other identities that may be the same person. Only suggested; a person's click links them."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from models.tables import Author, Post
from responder.references import references

MAX_SUGGESTIONS = 5
# The newest posts of the customer that are searched for order numbers, and how many matching posts are read.
OWN_POSTS = 200
MATCHING_POSTS = 200


@dataclass(frozen=True, slots=True)
class LinkSuggestion:
    """An identity of another customer that may be this customer, and the evidence."""

    author_id: int
    customer_id: int
    network: str
    username: str
    display_name: str
    same_name: bool
    shared_references: tuple[str, ...] = field(default_factory=tuple)

    @property
    def strong(self) -> bool:
        """Same name and an order number on both sides: the case the issue names."""
        return self.same_name and bool(self.shared_references)


def fold(name: str) -> str:
    """Compare names as people read them: no accents, no case, underscores and runs of spaces as one space."""
    decomposed = unicodedata.normalize("NFKD", name.replace("_", " "))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def suggest_links(
    session: Session, *, customer_id: int, texts: Sequence[str] | None = None, limit: int = MAX_SUGGESTIONS
) -> list[LinkSuggestion]:
    """Return identities of other customers that share this customer's display name or one of their order numbers.

    ``texts`` are the customer's newest posts when the caller has read them already. Evidence only: nothing is
    linked here.
    """
    mine = session.execute(select(Author).where(col(Author.customer_id) == customer_id)).scalars().all()
    if not mine:
        return []
    mine_ids = [a.id for a in mine]
    names = {fold(a.display_name) for a in mine if fold(a.display_name)}
    if texts is None:
        own = select(col(Post.text)).where(col(Post.author_id).in_(mine_ids)).order_by(col(Post.id).desc())
        texts = list(session.execute(own.limit(OWN_POSTS)).scalars())
    refs: list[str] = []
    for text in texts[:OWN_POSTS]:
        for ref in references(text):
            if ref not in refs:
                refs.append(ref)
    candidates: dict[int, tuple[Author, set[str]]] = {}
    if names:
        # lower() in SQL narrows by case; fold() then settles accents and spacing on the few rows found.
        lowered = {n.lower() for n in names} | {a.display_name.lower() for a in mine if a.display_name}
        rows = session.execute(
            select(Author)
            .where(func.lower(col(Author.display_name)).in_(lowered), col(Author.customer_id) != customer_id)
            .limit(50)
        ).scalars()
        for author in rows:
            assert author.id is not None
            candidates[author.id] = (author, set())
    if refs:
        stmt = (
            select(Author, col(Post.text))
            .join(Post, col(Post.author_id) == col(Author.id))
            .where(or_(*[col(Post.text).contains(ref) for ref in refs[:5]]), col(Author.customer_id) != customer_id)
            .limit(MATCHING_POSTS)
        )
        for author, text in session.execute(stmt).all():
            shared = set(references(text)) & set(refs)
            if not shared:
                continue
            assert author.id is not None
            candidates.setdefault(author.id, (author, set()))[1].update(shared)
    out: list[LinkSuggestion] = []
    for author, shared in candidates.values():
        same = bool(fold(author.display_name)) and fold(author.display_name) in names
        if not same and not shared:
            continue
        assert author.id is not None and author.customer_id is not None
        out.append(
            LinkSuggestion(
                author_id=author.id,
                customer_id=author.customer_id,
                network=author.network,
                username=author.username,
                display_name=author.display_name,
                same_name=same,
                shared_references=tuple(r for r in refs if r in shared),
            )
        )
    out.sort(key=lambda s: (not s.strong, not s.shared_references, s.author_id))
    return out[:limit]
