"""A model change re-scores open posts (and only those), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlmodel import Session

from classifier.base import PostFacts, PostScore
from classifier.lexicon_scorer import LexiconScorer
from classifier.pipeline import rescore_open, score_pending
from models.store import save_posts
from models.tables import Post, PostStatus, Score
from tests.support.incoming import incoming


class ShoutingScorer:
    """Another model: same scores, urgency pinned to 99, its own id."""

    model_id = "other-model-2"

    def score(self, posts: list[PostFacts]) -> list[PostScore]:
        return [replace(s, urgency=99, model_id=self.model_id) for s in LexiconScorer().score(posts)]


def test_model_change_rescores_open_posts_only(session: Session) -> None:
    save_posts(session, [
        incoming("1", "@Escucha my order never arrived", kind="mention"),
        incoming("2", "@Escucha thanks!", kind="mention"),
        incoming("3", "nice weather today", kind="search"),
    ])  # fmt: skip
    session.commit()
    assert score_pending(session, LexiconScorer()) == 3
    session.commit()
    closed = session.execute(select(Post).where(Post.external_id == "2")).scalar_one()
    closed.status = PostStatus.REPLIED
    session.commit()

    scorer = ShoutingScorer()
    assert rescore_open(session, scorer) == 1  # post 1 only: 2 is answered, 3 needed no action
    session.commit()
    assert rescore_open(session, scorer) == 0
    by_id = {p.external_id: p for p in session.execute(select(Post)).scalars()}
    assert by_id["1"].urgency == 99 and by_id["1"].status == PostStatus.SCORED
    models = {s.post_id: s.model_id for s in session.execute(select(Score)).scalars()}
    assert models[by_id["1"].id] == "other-model-2"
    assert models[by_id["2"].id].startswith("lexicon")


class CountingScorer(LexiconScorer):
    """The lexicon scorer, remembering every text it was asked to read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[str] = []

    def score(self, posts: list[PostFacts]) -> list[PostScore]:
        self.read += [p.text for p in posts]
        return super().score(posts)


def test_the_brands_own_replies_never_reach_the_model(session: Session) -> None:
    from responder.status import collect_status

    save_posts(session, [
        incoming("1", "@Escucha my order never arrived", kind="mention"),
        incoming("2", "Sorry about that, Ana is on it", kind="own"),
    ])  # fmt: skip
    session.commit()
    scorer = CountingScorer()
    assert score_pending(session, scorer) == 2  # both left ``new``
    session.commit()
    assert scorer.read == ["@Escucha my order never arrived"]
    by_id = {p.external_id: p for p in session.execute(select(Post)).scalars()}
    assert by_id["2"].status == PostStatus.NO_ACTION and by_id["2"].needs_response is False
    assert by_id["1"].status == PostStatus.SCORED
    assert [s.post_id for s in session.execute(select(Score)).scalars()] == [by_id["1"].id]
    status = collect_status(session)
    assert (status["scored"], status["own_not_scored"], status["unscored"]) == (1, 1, 0)

    save_posts(session, [incoming("3", "Thanks for waiting!", kind="own")])
    session.commit()
    assert score_pending(session, scorer) == 1 and len(scorer.read) == 1  # a batch of own posts alone: no call
