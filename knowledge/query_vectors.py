"""Each post's knowledge-lookup vector, made once in the scoring batch and read by the sweeps that draft replies.

Why: the twelve-layer encoder is the costliest thing a worker runs per post after the classifier (on a 2-core
machine without AVX-512, ~150 posts/s against the classifier's ~235/s). The assignment sweep embedded each post
under the team lock, the other worker's sweep embedded it again when it claimed a page the first had peeked, and
the upkeep of past answers embedded it a third time. Made here once, in the classifier's batch, none of them does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from ground.db import IN_CHUNK as _CHUNK
from knowledge.encoder import Encoder, default_encoder, from_bytes, model_id, to_bytes
from knowledge.index import has_entries
from models.knowledge import KbQueryVector
from models.tables import utcnow

ANSWERABLE = frozenset({"es", "en"})


@dataclass(frozen=True, slots=True)
class Scored:
    """What the scoring batch tells about one post it scored."""

    post_id: int
    text: str
    language: str
    needs_response: bool
    # Whether its reply type is one the knowledge base answers (praise and crises get people, not articles).
    answerable: bool = True


def wanted(posts: Iterable[Scored]) -> list[Scored]:
    """The posts a reply will be drafted for, of a type and in a language the knowledge base answers."""
    return [p for p in posts if p.needs_response and p.answerable and p.language in ANSWERABLE and p.text.strip()]


def embed_scored(session: Session, posts: Sequence[Scored], *, encoder: Encoder | None = None) -> int:
    """Store the query vectors of the scored posts that need one; the caller commits. Returns how many.

    Nothing is embedded while the knowledge base is empty (no article, no past answer): no lookup would use it,
    and the upkeep embeds the first answers itself.
    """
    todo = wanted(posts)
    if not todo:
        return 0
    current = encoder.model_id if encoder is not None else model_id()
    if not has_entries(session, current):
        return 0
    have = stored(session, [p.post_id for p in todo], current)
    todo = [p for p in todo if p.post_id not in have]
    if not todo:
        return 0
    encoder = encoder or default_encoder()
    vectors = encoder.queries([p.text for p in todo])
    keep(session, {p.post_id: v for p, v in zip(todo, vectors, strict=True)}, encoder.model_id)
    return len(todo)


def keep(session: Session, vectors: dict[int, np.ndarray], model: str) -> None:
    """Add ``vectors`` by post id (replacing another encoder's); the caller commits."""
    if not vectors:
        return
    ids = list(vectors)
    for start in range(0, len(ids), _CHUNK):
        for row in session.execute(
            select(KbQueryVector).where(col(KbQueryVector.post_id).in_(ids[start : start + _CHUNK]))
        ).scalars():
            session.delete(row)
    session.flush()
    now = utcnow()
    session.add_all(
        KbQueryVector(post_id=post_id, model_id=model, vector=to_bytes(vector), made_at=now)
        for post_id, vector in vectors.items()
    )


def stored(session: Session, post_ids: Sequence[int], model: str) -> dict[int, np.ndarray]:
    """The stored vectors of ``post_ids`` made by ``model`` (a post without one is missing)."""
    found: dict[int, np.ndarray] = {}
    ids = list(dict.fromkeys(post_ids))
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(col(KbQueryVector.post_id), col(KbQueryVector.vector)).where(
                col(KbQueryVector.post_id).in_(ids[start : start + _CHUNK]), col(KbQueryVector.model_id) == model
            )
        ).all()
        for post_id, blob in rows:
            found[int(post_id)] = from_bytes(blob)
    return found
