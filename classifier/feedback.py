"""Staff corrections made in the review app, read back as labels that `escucha train --with-feedback` learns from.

The review app stores each correction in the ``correction`` table (``responder.corrections.correct_post``);
the latest correction of a field on a post wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.base import SENTIMENTS
from models.tables import Correction, Post

# A person who raised urgency to this or more says the post needed an answer.
NEEDS_REPLY_URGENCY = 50


@dataclass(frozen=True, slots=True)
class Label:
    """One staff correction read as a label: the correction's id, the post's text, the task and the label."""

    correction_id: int
    text: str
    task: str
    label: int


def load_labels(engine: Engine) -> list[Label]:
    """Corrections as labels, oldest first: sentiment labels, and complaint = needs a reply (latest per field)."""
    with Session(engine) as session:
        rows = session.execute(
            select(
                col(Correction.id), col(Correction.post_id), col(Correction.field), col(Correction.new_value),
                col(Post.text),
            )
            .join(Post, col(Post.id) == col(Correction.post_id))
            .order_by(col(Correction.at), col(Correction.id))
        ).all()  # fmt: skip
    latest: dict[tuple[int, str], tuple[int, str, str]] = {}
    for correction_id, post_id, field, value, text in rows:
        latest[(post_id, field)] = (correction_id, value, text)
    out: list[Label] = []
    for (post_id, field), (correction_id, value, text) in latest.items():
        if not text.strip():
            continue
        if field == "sentiment" and value in SENTIMENTS:
            out.append(Label(correction_id, text, "sentiment", SENTIMENTS.index(value)))
        elif field == "needs_response" and value in ("True", "False"):
            out.append(Label(correction_id, text, "complaint", int(value == "True")))
        elif field == "urgency" and value.isdigit() and (post_id, "needs_response") not in latest:
            out.append(Label(correction_id, text, "complaint", int(int(value) >= NEEDS_REPLY_URGENCY)))
    return sorted(out, key=lambda label: label.correction_id)


def load_examples(engine: Engine) -> list[tuple[str, str, int]]:
    """Corrections as (text, task, label): sentiment labels, and complaint = needs a reply."""
    return [(label.text, label.task, label.label) for label in load_labels(engine)]
