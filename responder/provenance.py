"""What a sent reply keeps about where it came from: scores, model, suggestion, edits, approver."""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import Reply, Score, Staff


def text_diff(suggested: str, sent: str) -> str:
    """Return a word-level diff from the suggested draft to the sent text ('' when unchanged)."""
    if suggested == sent:
        return ""
    out: list[str] = []
    for token in difflib.ndiff(suggested.split(), sent.split()):
        if token.startswith(("- ", "+ ")):
            out.append(f"{token[0]}{token[2:]}")
    return " ".join(out)


def build_provenance(
    session: Session, reply: Reply, *, score: Score | None = None, score_read: bool = False
) -> dict[str, Any]:
    """Describe how ``reply`` came to be, for the record kept with it once sent.

    ``score_read``: the caller read the post's score already (``score``, None when it has none).
    """
    if not score_read:
        score = session.execute(select(Score).where(col(Score.post_id) == reply.post_id)).scalar_one_or_none()
    approver = session.get(Staff, reply.approved_by_id) if reply.approved_by_id is not None else None
    scores: dict[str, Any] | None = None
    if score is not None:
        scores = {
            "sentiment": score.sentiment,
            "p_negative": score.p_negative,
            "p_neutral": score.p_neutral,
            "p_positive": score.p_positive,
            "complaint": score.complaint,
            "urgency": score.urgency,
            "crisis": score.crisis,
            "language": score.language,
            "reasons": list(score.reasons),
        }
    return {
        "kind": reply.kind,
        "model_id": score.model_id if score is not None else reply.model_id,
        "scores": scores,
        "suggested_text": reply.suggested_text,
        "sent_text": reply.text,
        "diff": text_diff(reply.suggested_text, reply.text),
        "edited": reply.suggested_text != reply.text,
        "author_staff_id": reply.author_staff_id,
        "approved_by_id": reply.approved_by_id,
        "approved_by": approver.name if approver is not None else None,
        "approved_at": reply.approved_at.isoformat() if reply.approved_at else None,
    }
