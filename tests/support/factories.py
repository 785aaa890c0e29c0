"""Small builders for rows the responder tests start from."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlmodel import Session

from models.tables import Author, Post, PostKind, PostStatus, Score, Staff, utcnow

_ids = itertools.count(1)


def scored_post(
    session: Session,
    *,
    network: str = "x",
    kind: str = PostKind.MENTION,
    language: str = "en",
    urgency: int = 50,
    sentiment: str = "negative",
    complaint: float = 0.8,
    crisis: bool = False,
    age_s: float = 60.0,
    text: str = "my order never arrived",
    manual_only: bool = False,
) -> Post:
    """Store a post that the classifier has scored and that needs an answer."""
    n = next(_ids)
    author = Author(network=network, external_id=f"u{n}", username=f"user{n}", followers_count=100)
    session.add(author)
    session.flush()
    post = Post(
        network=network,
        external_id=f"p{n}",
        kind=kind,
        source="test",
        author_id=author.id,
        text=text,
        is_public=kind != PostKind.DM,
        created_at=utcnow() - timedelta(seconds=age_s),
        needs_response=True,
        status=PostStatus.SCORED,
        urgency=urgency,
        manual_only=manual_only,
    )
    session.add(post)
    session.flush()
    p = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
    p[sentiment] = 0.8
    session.add(
        Score(
            post_id=post.id,
            sentiment=sentiment,
            p_negative=p["negative"],
            p_neutral=p["neutral"],
            p_positive=p["positive"],
            complaint=complaint,
            urgency=urgency,
            crisis=crisis,
            language=language,
            reasons=["test"],
            model_id="test-model",
        )
    )
    session.commit()
    return post


def staff(session: Session, name: str, **kw: object) -> Staff:
    """Store a staff member (bilingual, both channels, capacity 10 unless told)."""
    fields: dict[str, object] = {
        "email": f"{name.lower().replace(' ', '.')}@test",
        "languages": "es,en",
        "channels": "public,dm",
        "capacity": 10,
        "role": "agent",
    }
    fields.update(kw)
    member = Staff(name=name, **fields)  # type: ignore[arg-type]
    session.add(member)
    session.commit()
    return member
