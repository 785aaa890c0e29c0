"""The responder's worker stages, each in its own transaction: assign, SLA, customer care, knowledge upkeep."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from classifier.e5_weights import WeightsUnavailable
from knowledge.upkeep import UpkeepResult, upkeep
from responder.care import CareOptions, CareResult, care_sweep, survey_sweep
from responder.sla_sweep import SlaSweepResult, sla_sweep

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CareStageResult:
    """What the SLA and care stage did."""

    sla: SlaSweepResult
    care: CareResult
    knowledge: UpkeepResult | None = None


def sla_and_care(engine: Engine, *, options: CareOptions | None = None) -> CareStageResult:
    """Run the SLA sweep, then the customer-care sweep; each commits on its own."""
    with Session(engine) as session:
        sla = sla_sweep(session)
        session.commit()
    options = options or CareOptions()
    with Session(engine) as session:
        # Acknowledgements and promise updates under the team lock; the questions after it (see survey_sweep).
        care = care_sweep(session, options=replace(options, satisfaction=False))
        session.commit()
    with Session(engine) as session:
        care.surveys = survey_sweep(session, options=options).surveys
        session.commit()
    kb = knowledge_upkeep(engine)
    if sla.breached:
        log.warning("%d posts breached their SLA: escalated to seniors and managers", len(sla.breached))
    if sla.held:
        log.warning("%d posts of unavailable staff wait in the holding queue", len(sla.held))
    return CareStageResult(sla=sla, care=care, knowledge=kb)


def knowledge_upkeep(engine: Engine) -> UpkeepResult | None:
    """Record what staff did with knowledge-base suggestions and embed newly sent answers; never fails the stage."""
    with Session(engine) as session:
        try:
            result = upkeep(session)
            session.commit()
        except IntegrityError:
            # Another worker embedded the same answer first: its row stands, and this pass is done next time.
            session.rollback()
            return None
        except WeightsUnavailable as exc:
            session.rollback()
            log.warning("knowledge upkeep skipped: %s", exc)
            return None
    return result
