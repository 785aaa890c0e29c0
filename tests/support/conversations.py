"""Test helpers: conversations built the way the worker builds them (stored, scored, assigned, acknowledged)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from classifier.pipeline import score_pending
from models.store import save_posts
from models.tables import Post, Reply, ReplyKind, utcnow
from networks.base import IncomingAuthor, IncomingPost, SentReply
from responder.assign import assign_pending
from responder.care import CareOptions, care_sweep
from responder.outbox import send_approved

DM_TEXTS = (
    "hola, mi pedido #5521 no ha llegado",
    "¿alguien me puede ayudar? <script>alert(1)</script>",
    "sigo esperando, es urgente, pagué hace una semana",
)


@dataclass
class RecordingSender:
    """A network that accepts every reply and remembers what it was asked to send."""

    network: str = "x"
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (post external id, kind, text)

    def send_reply(
        self, *, external_id: str, kind: str, author_external_id: str | None, text: str, idempotency_key: str
    ) -> SentReply:
        self.sent.append((external_id, kind, text))
        return SentReply(external_id=f"r{len(self.sent)}")


def incoming_dm(external_id: str, text: str, *, author: str, minutes_ago: float) -> IncomingPost:
    """A customer's DM to the brand on X."""
    return IncomingPost(
        network="x", external_id=external_id, kind="dm", source="dms", text=text,
        created_at=utcnow() - timedelta(minutes=minutes_ago), is_public=False, conversation_id=f"brand-{author}",
        author=IncomingAuthor(network="x", external_id=author, username=author, display_name=author.title()),
    )  # fmt: skip


def run_worker_once(engine: Engine, sender: RecordingSender) -> None:
    """Score, assign, acknowledge and send, as one pass of the worker does."""
    with Session(engine) as s:
        score_pending(s, LexiconScorer())
        s.commit()
        assign_pending(s)
        s.commit()
        care_sweep(s, options=CareOptions(ack_dms=True))
        s.commit()
    send_approved(engine, {"x": sender})


def dm_conversation(engine: Engine, sender: RecordingSender, *, author: str = "carla_mx", prefix: str = "d") -> int:
    """Three DMs of one customer, scored, assigned, acknowledged once and the acknowledgement sent; its id."""
    with Session(engine) as s:
        save_posts(s, [incoming_dm(f"{prefix}{i}", text, author=author, minutes_ago=30 - i * 5)
                       for i, text in enumerate(DM_TEXTS)])  # fmt: skip
        s.commit()
    run_worker_once(engine, sender)
    with Session(engine) as s:
        refs = set(
            s.execute(select(col(Post.conversation_ref)).where(col(Post.external_id).like(f"{prefix}%"))).scalars()
        )
        assert len(refs) == 1
        return int(refs.pop())


def answers(engine: Engine, post_ids: list[int]) -> list[Reply]:
    """The answer replies of ``post_ids``, oldest first."""
    with Session(engine) as s:
        return list(
            s.execute(
                select(Reply)
                .where(col(Reply.post_id).in_(post_ids), col(Reply.kind) == ReplyKind.ANSWER)
                .order_by(col(Reply.id))
            ).scalars()
        )
