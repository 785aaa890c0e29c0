"""The worker's stage bodies: the SLA, customer-care and knowledge-upkeep stage, and the scoring batch's vectors."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from classifier.base import PostScore
from classifier.e5_weights import WeightsUnavailable
from classifier.pipeline import MAX_TEXT_CHARS
from ground.turns import lock_key, turn
from knowledge.query_vectors import Scored, embed_scored
from knowledge.upkeep import UpkeepResult, embed_answers, reembed_stale, settle_outcomes
from models.tables import Post
from responder.care import CareOptions, CareResult, care_sweep, survey_sweep
from responder.drafts import draws_on_knowledge
from responder.sla_sweep import SlaSweepResult, sla_sweep

log = logging.getLogger(__name__)
_UPKEEP_KEY = lock_key("knowledge:upkeep")
_UPKEEP_LOCAL = threading.Lock()


@dataclass(slots=True)
class CareStageResult:
    """What the SLA and care stage did."""

    sla: SlaSweepResult
    care: CareResult
    knowledge: UpkeepResult | None = None


def sla_and_care(
    engine: Engine, *, options: CareOptions | None = None, sla: bool = True, upkeep: bool = True
) -> CareStageResult:
    """Run the SLA sweep, the customer-care sweep, then the knowledge upkeep; each commits on its own.

    ``sla`` / ``upkeep`` False skip that part this time (the worker runs them less often than the care sweep).
    """
    swept = SlaSweepResult()
    if sla:
        with Session(engine) as session:
            swept = sla_sweep(session)
            session.commit()
    options = options or CareOptions()
    with Session(engine) as session:
        # Acknowledgements and promise updates under the team lock; the questions after it (see survey_sweep).
        care = care_sweep(session, options=replace(options, satisfaction=False))
        session.commit()
    with Session(engine) as session:
        care.surveys = survey_sweep(session, options=options).surveys
        session.commit()
    kb = knowledge_upkeep(engine) if upkeep else None
    if swept.breached:
        log.warning("%d posts breached their SLA: escalated to seniors and managers", len(swept.breached))
    if swept.held:
        log.warning("%d posts of unavailable staff wait in the holding queue", len(swept.held))
    return CareStageResult(sla=swept, care=care, knowledge=kb)


def knowledge_upkeep(engine: Engine) -> UpkeepResult | None:
    """Record what staff did with knowledge-base suggestions and embed newly sent answers; never fails the stage.

    One worker at a time (the others skip their turn: None): two settling the same page locked its rows in
    different orders, and two embedding the same answer collided. Outcomes are committed before the encoder runs.
    """
    with turn(engine, _UPKEEP_KEY, _UPKEEP_LOCAL) as mine:
        if not mine:
            return None
        with Session(engine) as session:
            settled = settle_outcomes(session)
            session.commit()
        with Session(engine) as session:
            try:
                embedded = embed_answers(session)
                reembedded = reembed_stale(session)
                session.commit()
            except IntegrityError:
                # An answer embedded meanwhile by a worker of an older version (no turn): its row stands.
                session.rollback()
                return UpkeepResult(settled=settled)
            except WeightsUnavailable as exc:
                session.rollback()
                log.warning("knowledge upkeep: answers not embedded: %s", exc)
                return UpkeepResult(settled=settled)
    return UpkeepResult(settled=settled, embedded=embedded, reembedded=reembedded)


def embed_scored_posts(session: Session, done: list[tuple[Post, PostScore, bool]]) -> int:
    """Embed a scoring batch's posts for the knowledge lookup, in its transaction; never fails the batch.

    Without the encoder's weights the posts are scored all the same, and the sweeps look them up as before.
    """
    posts = [
        Scored(
            post.id,
            post.text[:MAX_TEXT_CHARS],
            s.language,
            needs,
            # Whether its draft may carry a knowledge answer (its reply type, as the draft will see it).
            answerable=draws_on_knowledge(
                text=post.text, crisis=s.crisis, complaint=s.complaint, sentiment=s.sentiment
            ),
        )
        for post, s, needs in done
        if post.id is not None
    ]
    try:
        # The batch's scores and statuses are flushed at commit, after the encoder ran: flushed before, its
        # updated rows would hold up, for the whole encoding, anyone storing one of those posts again.
        with session.no_autoflush:
            return embed_scored(session, posts)
    except WeightsUnavailable as exc:
        log.warning("knowledge vectors not made while scoring: %s", exc)
        return 0
