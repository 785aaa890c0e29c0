"""Test helpers: one person who writes on X and on Facebook about one order, stored through the real store path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from models.store import save_posts
from models.tables import Author, Post
from networks.base import IncomingAuthor, IncomingPost

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Person:
    """The rows of one person seen as two identities (X and Facebook) and a stranger with another name."""

    x_author: int
    fb_author: int
    stranger_author: int
    x_customer: int
    fb_customer: int
    x_posts: list[int]
    fb_posts: list[int]


def _post(network: str, ext: str, text: str, who: IncomingAuthor, *, kind: str, minutes: int,
          conversation: str | None = None) -> IncomingPost:  # fmt: skip
    return IncomingPost(
        network=network, external_id=ext, kind=kind, source="test", text=text,
        created_at=T0 + timedelta(minutes=minutes), author=who, is_public=kind != "dm",
        conversation_id=conversation, raw={"id": ext},
    )  # fmt: skip


def store_person(session: Session, *, x_name: str = "Carlos Ruiz", fb_name: str = "Carlos Ruiz") -> Person:
    """Store Carlos on X (a mention and two DMs) and on Facebook (a comment), all about order #5521."""
    x = IncomingAuthor(network="x", external_id="x-carlos", username="Carlos_Mx64", display_name=x_name)
    fb = IncomingAuthor(network="facebook", external_id="fb-carlos", display_name=fb_name)
    other = IncomingAuthor(network="facebook", external_id="fb-other", display_name="Otra Persona")
    save_posts(session, [
        _post("x", "x1", "@brand my order #5521 never arrived", x, kind="mention", minutes=0, conversation="x1"),
        _post("x", "x2", "hola, sigo esperando el pedido 5521", x, kind="dm", minutes=5, conversation="dm-c"),
        _post("x", "x3", "¿alguna novedad?", x, kind="dm", minutes=9, conversation="dm-c"),
        _post("facebook", "f1", "Pedido #5521: nadie me responde en X", fb, kind="comment", minutes=30),
        _post("facebook", "f2", "¿Abrís el domingo?", other, kind="comment", minutes=31),
    ])  # fmt: skip
    session.commit()

    def author(ext: str) -> Author:
        return session.execute(select(Author).where(col(Author.external_id) == ext)).scalar_one()

    def posts(author_id: int | None) -> list[int]:
        stmt = select(col(Post.id)).where(col(Post.author_id) == author_id).order_by(col(Post.id))
        return [int(i) for i in session.execute(stmt).scalars()]

    xa, fa, oa = author("x-carlos"), author("fb-carlos"), author("fb-other")
    assert xa.id and fa.id and oa.id and xa.customer_id and fa.customer_id
    return Person(
        x_author=xa.id,
        fb_author=fa.id,
        stranger_author=oa.id,
        x_customer=xa.customer_id,
        fb_customer=fa.customer_id,
        x_posts=posts(xa.id),
        fb_posts=posts(fa.id),
    )
