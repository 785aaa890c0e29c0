"""The care stage acknowledges on every run; its SLA sweep and knowledge upkeep run at most as often as configured."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifier.lexicon_scorer import LexiconScorer
from responder.assign import assign_pending
from tests.support.factories import scored_post, staff
from worker.scheduler import Worker


def _breached_post(engine: Engine) -> int:
    with Session(engine, expire_on_commit=False) as s:
        post = scored_post(s, crisis=True, age_s=3600)  # a crisis an hour old: past every due time
        assign_pending(s)
        s.commit()
        assert post.id is not None
        return post.id


def test_the_sla_sweep_and_the_upkeep_wait_for_their_own_cadence(engine: Engine) -> None:
    with Session(engine) as s:
        staff(s, "Boss Lady", role="manager", channels="")
        s.commit()
    first_post = _breached_post(engine)
    worker = Worker(engine, listeners=[], senders={}, scorer=LexiconScorer(), sla_seconds=3600, upkeep_seconds=3600)
    first = worker.care()
    assert first.sla.breached == [first_post]
    assert first.knowledge is not None
    second_post = _breached_post(engine)
    second = worker.care()
    # Within the hour neither runs again: the breach waits for the next SLA sweep instead of being lost.
    assert second.sla.breached == [] and second.knowledge is None
    every_time = Worker(engine, listeners=[], senders={}, scorer=LexiconScorer())
    assert every_time.care().sla.breached == [second_post]
