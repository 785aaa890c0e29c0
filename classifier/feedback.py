"""Staff corrections made in the review app, read back as labels that `escucha train --with-feedback` learns from.

The review app stores each correction in the ``correction`` table (``responder.corrections.correct_post``);
the latest correction of a field on a post wins.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.base import SENTIMENTS
from models.tables import Correction, Post

# A person who raised urgency to this or more says the post needed an answer.
NEEDS_REPLY_URGENCY = 50


def load_examples(engine: Engine) -> list[tuple[str, str, int]]:
    """Corrections as (text, task, label): sentiment labels, and complaint = needs a reply."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Correction.post_id), col(Correction.field), col(Correction.new_value), col(Post.text))
            .join(Post, col(Post.id) == col(Correction.post_id))
            .order_by(col(Correction.at), col(Correction.id))
        ).all()
    latest: dict[tuple[int, str], tuple[str, str]] = {}
    for post_id, field, value, text in rows:
        latest[(post_id, field)] = (value, text)
    out: list[tuple[str, str, int]] = []
    for (_post_id, field), (value, text) in latest.items():
        if not text.strip():
            continue
        if field == "sentiment" and value in SENTIMENTS:
            out.append((text, "sentiment", SENTIMENTS.index(value)))
        elif field == "needs_response" and value in ("True", "False"):
            out.append((text, "complaint", int(value == "True")))
        elif field == "urgency" and value.isdigit() and (_post_id, "needs_response") not in latest:
            out.append((text, "complaint", int(int(value) >= NEEDS_REPLY_URGENCY)))
    return out
