"""End to end through the real tweepy and facebook-sdk clients against the sandbox, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.registry import load_scorer
from ground.settings import Settings
from models.tables import Post, PostStatus, Reply, ReplyState, Score
from networks.registry import build_listeners, build_senders
from responder.actions import ReplyConflict, approve_reply
from sandbox.server import Sandbox
from tests.support.factories import staff
from worker.scheduler import Worker


def make_worker(engine: Engine, sandbox: Sandbox) -> Worker:
    """A worker whose real clients talk to the sandbox."""
    settings = Settings(database_url="sqlite://", **sandbox.settings_overrides())
    return Worker(engine, listeners=build_listeners(settings), senders=build_senders(settings), scorer=load_scorer())


def _approve_only_reply(session: Session, post: Post) -> Reply:
    manager = staff(session, "Lucía Romero", role="manager", senior=True)
    reply = session.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
    assert reply.state == ReplyState.SUGGESTED
    return approve_reply(session, reply_id=reply.id, staff=manager)  # type: ignore[arg-type]


def test_x_mention_is_scored_assigned_approved_and_answered_once(engine: Engine, sandbox: Sandbox) -> None:
    mention_id = sandbox.add_mention(
        "my order #4411 never arrived and nobody answers, I want a refund", author="ana_g", lang="en"
    )
    worker = make_worker(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Sam Carter", languages="en", senior=True)
        worker.run_once()
        post = session.execute(select(Post).where(col(Post.external_id) == mention_id)).scalar_one()
        score = session.execute(select(Score).where(col(Score.post_id) == post.id)).scalar_one()
        assert post.network == "x" and post.kind == "mention"
        assert score.sentiment == "negative" and score.reasons
        assert post.status == PostStatus.ASSIGNED and post.assignee_id is not None
        reply = _approve_only_reply(session, post)

    outcomes = worker.send()
    assert [o.result for o in outcomes] == ["sent"]
    tweets = [r for r in sandbox.sent if r.network == "x"]
    assert len(tweets) == 1
    assert tweets[0].in_reply_to == mention_id and tweets[0].text == reply.text

    # A second send, a second poll and a late second approval change nothing on the network.
    worker.send()
    worker.run_once()
    with Session(engine, expire_on_commit=False) as session:
        late = staff(session, "Marta Gil", role="manager")
        with pytest.raises(ReplyConflict, match="already sent"):
            approve_reply(session, reply_id=reply.id, staff=late)  # type: ignore[arg-type]
        done = session.get(Reply, reply.id)
        assert done is not None and done.state == ReplyState.SENT and done.external_id == tweets[0].external_id
        assert session.get(Post, post.id).status == PostStatus.REPLIED  # type: ignore[union-attr]
        # Our own reply is recognised, never ingested as new work.
        open_work = session.execute(
            select(func.count()).select_from(Post).where(col(Post.status).in_([PostStatus.NEW, PostStatus.SCORED]))
        ).scalar_one()
        assert open_work == 0
    # The answer went out once, and nothing after it: the satisfaction question goes to private conversations
    # unless a deployment asks it in public too (responder.care.ask_satisfaction).
    after = [r for r in sandbox.sent if r.network == "x"]
    assert [r.text for r in after] == [reply.text] and after[0].in_reply_to == mention_id


def test_facebook_comment_is_answered_once_with_a_comment(engine: Engine, sandbox: Sandbox) -> None:
    page_post = sandbox.add_fb_post("¡Nueva colección de otoño ya disponible!")
    comment_id = sandbox.add_fb_comment(page_post, "Hice un pedido hace dos semanas y no llega, ¿qué pasa?")
    worker = make_worker(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Diego Fernández", languages="es", senior=True)
        worker.run_once()
        post = session.execute(select(Post).where(col(Post.external_id) == comment_id)).scalar_one()
        assert post.network == "facebook" and post.kind == "comment" and post.parent_id is not None
        page = session.get(Post, post.parent_id)
        assert page is not None and page.needs_response is False  # the brand's own post is context, not work
        reply = _approve_only_reply(session, post)
        assert reply.text.startswith("Hola")
    worker.send()
    worker.send()
    comments = [r for r in sandbox.sent if r.network == "facebook"]
    assert len(comments) == 1 and comments[0].in_reply_to == comment_id and comments[0].text == reply.text
