"""The demo's simulated customers answer satisfaction questions in the channel they were asked in, Instagram too."""

from __future__ import annotations

import random

from sqlmodel import Session

from demo.people import answer_surveys
from models.tables import Author, Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, Satisfaction, utcnow
from sandbox.server import Sandbox


class _Always(random.Random):
    """Every customer answers (the demo lets 80 % answer)."""

    def random(self) -> float:
        return 0.0


def test_an_instagram_customer_answers_under_their_own_comment(session: Session, sandbox: Sandbox) -> None:
    media = sandbox.add_ig_media("Nuestra nueva colección")
    comment_id = sandbox.add_ig_comment(media, "¿Hay talla M?", author="carla.ig")
    author = Author(network="instagram", external_id="ig-carla", username="carla.ig", display_name="Carla")
    session.add(author)
    session.flush()
    post = Post(network="instagram", external_id=comment_id, kind=PostKind.COMMENT, source="test",
                author_id=author.id, text="¿Hay talla M?", is_public=True, created_at=utcnow(),
                status=PostStatus.REPLIED)  # fmt: skip
    session.add(post)
    session.flush()
    survey = Reply(post_id=post.id, kind=ReplyKind.SURVEY, state=ReplyState.SENT, text="¿Qué tal te atendimos?",  # type: ignore[arg-type]
                   suggested_text="¿Qué tal te atendimos?", idempotency_key="k1", external_id="ig-reply-1")  # fmt: skip
    session.add(survey)
    session.flush()
    session.add(Satisfaction(post_id=post.id, reply_id=survey.id))  # type: ignore[arg-type]
    session.commit()
    before = len(sandbox._ig_state()["comments"])
    assert answer_surveys(session, sandbox, _Always(), set()) == 1
    replies = sandbox._ig_state()["comments"][before:]
    assert len(replies) == 1 and replies[0]["_parent_id"] == comment_id
