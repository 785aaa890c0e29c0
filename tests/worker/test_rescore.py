"""A model change re-scores open posts through the worker's scoring stage, new posts first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from models.store import save_posts
from models.tables import Post, PostStatus, Score
from tests.support.incoming import incoming
from worker.scheduler import Worker


class NextModel(LexiconScorer):
    """The same scorer under a new model id, as after `escucha train` ships new weights."""

    model_id = "lexicon-next"


def test_model_change_rescores_open_posts_only(engine: Engine) -> None:
    with Session(engine) as session:
        save_posts(session, [incoming("1", "my refund never came"), incoming("2", "thanks!", kind="mention")])
        session.commit()
    Worker(engine, listeners=[], senders={}, scorer=LexiconScorer()).score()
    with Session(engine) as session:
        answered = session.execute(select(Post).where(col(Post.external_id) == "2")).scalar_one()
        answered.status = PostStatus.REPLIED
        session.add(answered)
        session.commit()
    assert Worker(engine, listeners=[], senders={}, scorer=NextModel()).score() == 1
    with Session(engine) as session:
        models = dict(
            session.execute(
                select(col(Post.external_id), col(Score.model_id)).join(Score, col(Score.post_id) == col(Post.id))
            ).all()
        )
    assert models == {"1": "lexicon-next", "2": LexiconScorer.model_id}
