"""The demo's people: a manager who approves suggested answers, and customers who answer the satisfaction question.

Without them a headless demo would show no answer sent and so no satisfaction at all. They act through the same
calls as the desk (``approve_reply``) and the same sandbox networks customers write on.
"""

from __future__ import annotations

import logging
import random
import threading

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.tables import Author, Post, PostKind, Reply, ReplyKind, ReplyState, Satisfaction, Staff
from responder.actions import InvalidReply, ReplyConflict, approve_reply
from sandbox.server import Sandbox

log = logging.getLogger(__name__)

APPROVER_EMAIL = "lucia@demo.escucha"
APPROVALS_PER_ROUND = 3
ROUND_S = 3.0
ANSWER_SHARE = 0.8  # most customers answer the question, not all
# What customers write back, in both languages: numbers, words, stars, comments.
ANSWERS = (
    "5", "cinco", "⭐⭐⭐⭐", "muy bien, gracias", "10/10", "4, rápido y amable", "Excelente!", "3", "regular",
    "2 - tardaron mucho", "nada satisfecho", "5, thank you!", "four", "⭐⭐⭐⭐⭐ great help", "good", "1",
)  # fmt: skip


def approve_some(session: Session, *, limit: int = APPROVALS_PER_ROUND) -> list[int]:
    """Approve the oldest suggested answers as the demo's manager; return the reply ids."""
    manager = session.execute(select(Staff).where(col(Staff.email) == APPROVER_EMAIL)).scalar_one_or_none()
    if manager is None:
        return []
    ids = session.execute(
        select(col(Reply.id))
        .join(Post, col(Post.id) == col(Reply.post_id))
        .where(
            col(Reply.kind) == ReplyKind.ANSWER,
            # Machine suggestions and answers people submitted: the demo's manager approves both.
            col(Reply.state).in_([ReplyState.SUGGESTED, ReplyState.PENDING_APPROVAL]),
            col(Post.manual_only).is_(False),
        )
        .order_by(col(Reply.id))
        .limit(limit)
    ).scalars()
    done: list[int] = []
    for reply_id in list(ids):
        try:
            approve_reply(session, reply_id=reply_id, staff=manager)
        except (ReplyConflict, InvalidReply) as exc:  # a race with the sweeps: the next round tries others
            log.debug("demo approval of reply %s skipped: %s", reply_id, exc)
            session.rollback()
            continue
        done.append(reply_id)
    return done


def answer_surveys(session: Session, sandbox: Sandbox, rng: random.Random, answered: set[int]) -> int:
    """Have customers answer the satisfaction questions that reached them, in the channel they were asked in."""
    rows = session.execute(
        select(Satisfaction, Post, Author, Reply)
        .join(Post, col(Post.id) == col(Satisfaction.post_id))
        .join(Author, col(Author.id) == col(Post.author_id))
        .join(Reply, col(Reply.id) == col(Satisfaction.reply_id))
        .where(col(Satisfaction.score).is_(None), col(Reply.state) == ReplyState.SENT)
    ).all()
    count = 0
    for question, post, author, survey in rows:
        if question.id is None or question.id in answered:
            continue
        answered.add(question.id)
        if rng.random() > ANSWER_SHARE:
            continue
        text = rng.choice(ANSWERS)
        if post.network == "x" and post.kind == PostKind.DM:
            sandbox.add_dm(text, author=author.username)
        elif post.network == "x":
            sandbox.add_mention(text, author=author.username, in_reply_to=survey.external_id)
        elif post.network == "instagram" and post.kind == PostKind.DM:
            sandbox.add_ig_message(text, author=author.username)
        elif post.network == "instagram":
            # A reply under the customer's own comment (a Facebook comment here raised KeyError on the media id).
            sandbox.add_ig_comment(post.external_id, text, author=author.username)
        elif post.kind == PostKind.DM:
            sandbox.add_fb_message(text, author=author.display_name)
        else:
            sandbox.add_fb_comment(post.external_id, text, author=author.display_name)
        count += 1
    return count


def run_people(engine: Engine, sandbox: Sandbox, stop: threading.Event, seed: int = 11) -> None:
    """Approve and answer every few seconds until stopped."""
    rng = random.Random(seed)
    answered: set[int] = set()
    while not stop.wait(ROUND_S):
        try:
            with Session(engine) as session:
                approve_some(session)
                answer_surveys(session, sandbox, rng, answered)
        except Exception:  # the demo goes on; the worker's own stages report their errors
            log.exception("demo people: a round failed")
