"""The worker process: APScheduler jobs for every listener source, scoring, assignment and sending."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifier.base import Scorer
from classifier.pipeline import score_pending
from listeners.base import AuthFailed, Listener, ListenerError, Sender
from listeners.poller import PollOutcome, poll_source
from models.tables import utcnow
from responder.assign import SweepResult, assign_pending
from responder.outbox import SendOutcome, send_approved

log = logging.getLogger(__name__)


def job_id(listener: Listener) -> str:
    """Name the scheduler job of a listener source."""
    return f"poll:{listener.network}:{listener.source}"


class Worker:
    """Runs the pipeline stages; each stage reads what the previous one stored, so any may restart."""

    def __init__(
        self,
        engine: Engine,
        *,
        listeners: Sequence[Listener],
        senders: Mapping[str, Sender],
        scorer: Scorer,
        batch_size: int = 256,
    ) -> None:
        self.engine = engine
        self.listeners = list(listeners)
        self.senders = senders
        self.scorer = scorer
        self.batch_size = batch_size
        self.scheduler: BackgroundScheduler | None = None

    # --- the stages, callable directly (tests, `run_once`) or from scheduler jobs ---

    def poll(self, listener: Listener) -> PollOutcome:
        """Poll one source and react to its outcome (reschedule on rate limit, stop on bad credentials)."""
        outcome = poll_source(self.engine, listener)
        if self.scheduler is not None:
            jid = job_id(listener)
            if outcome.status == "rate_limited" and outcome.retry_after:
                # Never sleep in a job: move its next run to when the network lets us back in.
                self.scheduler.modify_job(jid, next_run_time=utcnow() + timedelta(seconds=outcome.retry_after))
            elif outcome.status == "auth_failed":
                log.error("%s stopped: credentials refused (%s); other sources keep running", jid, outcome.error)
                self.scheduler.remove_job(jid)
        return outcome

    def score(self) -> int:
        """Score new posts until none are left (bounded per call)."""
        total = 0
        for _ in range(20):
            with Session(self.engine) as session:
                n = score_pending(session, self.scorer, limit=self.batch_size)
                session.commit()
            total += n
            if n < self.batch_size:
                break
        return total

    def assign(self) -> SweepResult:
        """Run one backlog sweep."""
        with Session(self.engine) as session:
            result = assign_pending(session, limit=self.batch_size * 4)
            session.commit()
        if result.held:
            log.warning("%d posts wait in the holding queue: nobody eligible is available", len(result.held))
        return result

    def send(self) -> list[SendOutcome]:
        """Send approved replies."""
        return send_approved(self.engine, self.senders)

    def run_once(self) -> None:
        """Run every stage once, in pipeline order."""
        for listener in self.listeners:
            self.poll(listener)
        self.score()
        self.assign()
        self.send()

    # --- scheduling ---

    def verified_listeners(self) -> list[Listener]:
        """Check each source's credentials; a refused one is left out with a clear message."""
        ok: list[Listener] = []
        for listener in self.listeners:
            try:
                listener.verify()
            except AuthFailed as exc:
                log.error("%s not scheduled: credentials refused (%s)", job_id(listener), exc)
                continue
            except ListenerError as exc:
                log.warning("%s could not be verified now (%s); scheduling it anyway", job_id(listener), exc)
            ok.append(listener)
        return ok

    def start(self, *, intervals: Mapping[str, float], stage_seconds: float = 2.0) -> BackgroundScheduler:
        """Start the scheduler with one job per verified source and one per stage."""
        scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler = scheduler
        now = utcnow()
        for listener in self.verified_listeners():
            every = intervals.get(listener.network, 60.0)
            scheduler.add_job(
                self.poll,
                "interval",
                seconds=every,
                args=[listener],
                id=job_id(listener),
                max_instances=1,
                coalesce=True,
                jitter=max(0.0, every / 10),
                next_run_time=now,
            )
        for name, func in (("score", self.score), ("assign", self.assign), ("send", self.send)):
            scheduler.add_job(
                func,
                "interval",
                seconds=stage_seconds,
                id=name,
                max_instances=1,
                coalesce=True,
                next_run_time=now,
            )
        scheduler.start()
        return scheduler

    def stop(self) -> None:
        """Stop the scheduler, letting running jobs finish."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
