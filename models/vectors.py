"""The post-vector cache: read the vectors a given encoder made, and keep new ones."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ground.db import IN_CHUNK as _CHUNK
from models.tables import PostEmbedding, utcnow


def cached_vectors(session: Session, post_ids: Iterable[int], model_id: str) -> dict[int, np.ndarray]:
    """Return the stored float32 vectors of ``post_ids`` that ``model_id`` made (others are missing)."""
    ids = list(post_ids)
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.exec(
            select(PostEmbedding).where(
                col(PostEmbedding.post_id).in_(ids[start : start + _CHUNK]), col(PostEmbedding.model_id) == model_id
            )
        ).all()
        for row in rows:
            vector = np.frombuffer(row.vector, dtype=np.float16).astype(np.float32)
            if len(vector) == row.dims:
                found[row.post_id] = vector
    return found


def keep_vectors(session: Session, vectors: dict[int, np.ndarray], model_id: str) -> int:
    """Store ``vectors`` for ``model_id``, replacing another encoder's; return how many were written.

    Two pages rendering at once may both make a post's vector: the second write loses the race, which is
    harmless (the vectors are the same), so it is dropped rather than raised.
    """
    if not vectors:
        return 0
    ids = list(vectors)
    for start in range(0, len(ids), _CHUNK):
        stale = session.exec(
            select(PostEmbedding).where(col(PostEmbedding.post_id).in_(ids[start : start + _CHUNK]))
        ).all()
        for row in stale:
            session.delete(row)
    now = utcnow()
    session.add_all(
        PostEmbedding(
            post_id=post_id, model_id=model_id, dims=len(v), vector=v.astype(np.float16).tobytes(), made_at=now
        )
        for post_id, v in vectors.items()
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return 0
    return len(vectors)
