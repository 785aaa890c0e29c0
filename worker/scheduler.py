"""The worker process: APScheduler jobs for every listener source, scoring, assignment and sending.

Poll jobs live in a job store on the same database (SQLite or PostgreSQL) so schedules, and pauses for
rate limits or the read budget, survive a restart. A stored job names a module-level function and the
source's (network, source) pair; the process's running ``Worker`` supplies the clients.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.base import Scorer
from classifier.pipeline import rescore_open, score_pending
from classifier.relevance import brand_terms as brand_terms_of
from ground.settings import Settings
from ground.wake import STAGES as WAKE_STAGES
from listeners.budget import ReadBudget
from listeners.lease import lease_key, source_lease
from listeners.poller import PollOutcome, PollStatus, poll_source
from models.store import get_cursor
from models.tables import SourceCursor, utcnow
from networks.base import AuthFailed, Listener, ListenerError, Sender
from networks.http import with_retries
from responder.assign import SweepResult, assign_pending
from responder.care import CareOptions
from responder.forecast import PromiseRules
from responder.notify import NotifyOptions, PushResult, push_pending
from responder.outbox import SENDING_LEASE, SendOutcome, send_approved
from worker.stages import CareStageResult, embed_scored_posts, sla_and_care
from worker.wake import StageRunner, WakeListener

if TYPE_CHECKING:
    from classifier.refit_job import RefitOptions
    from models.tables import RefitAttempt

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
POLL_PREFIX = "poll:"
DEFAULT_INTERVAL = 60.0

# What each ``escucha worker --role`` schedules: the listeners' poll jobs, or these stage jobs.
ROLES = ("listeners", "classifier", "responder", "all")
ROLE_STAGES: dict[str, tuple[str, ...]] = {
    "classifier": ("score", "refit"),
    "responder": ("assign", "care", "send", "notify"),
}

# Each stage job's cadence when ``Worker.start`` is not told (``ESCUCHA_*_SECONDS`` in a real worker).
DEFAULT_STAGE_SECONDS = 2.0
# The refit job looks for new corrections this often unless told (``ESCUCHA_REFIT_SECONDS``).
DEFAULT_REFIT_SECONDS = 600.0
# Stage jobs run on their own threads: a burst of slow polls must never leave a sweep waiting for a thread.
# Two per stage: a wake-up that comes while a stage runs starts a second instance, which only asks the first to
# run once more (``StageRunner``) and returns.
STAGE_THREADS = 8
# The tick of a stage woken by notifications when ``Worker.start`` is not told (``ESCUCHA_WAKE_SAFETY_SECONDS``).
DEFAULT_SAFETY_SECONDS = 10.0

# The worker whose listeners the stored jobs run with (one per process).
_active: Worker | None = None


def care_options(settings: Settings) -> CareOptions:
    """Read which automatic customer messages are on from the settings."""
    return CareOptions(
        ack_dms=settings.ack_dms,
        updates=settings.delay_updates,
        satisfaction=settings.satisfaction_survey,
        promoter=settings.satisfaction_promoter,
        public_survey=settings.satisfaction_public,
        promises=PromiseRules(floor_s=settings.promise_floor_minutes * 60, margin=settings.promise_margin),
    )


def job_id(listener: Listener) -> str:
    """Name the scheduler job of a listener source."""
    return f"{POLL_PREFIX}{listener.network}:{listener.source}"


def run_poll(network: str, source: str) -> None:
    """The stored poll job: poll ``network``/``source`` with the running worker's listener."""
    worker = _active
    if worker is None:
        log.warning("poll job %s/%s ran without a worker in this process", network, source)
        return
    listener = worker.listener(network, source)
    if listener is None:
        log.warning("%s/%s is no longer configured; its job is removed", network, source)
        worker.remove_job(f"{POLL_PREFIX}{network}:{source}")
        return
    # Across processes on PostgreSQL one poller per source: skip this tick while another one holds it.
    with source_lease(worker.engine, network, source) as held:
        if not held:
            log.debug("%s/%s is being polled by another worker; skipping this tick", network, source)
            return
        worker.poll(listener)


def role_parts(role: str) -> set[str]:
    """The parts a role runs: ``listeners``, ``classifier`` and/or ``responder`` (``all`` is every one).

    Several roles joined with ``+`` (``classifier+responder``) run in one process.
    """
    names = role.split("+")
    if not all(name in ROLES for name in names):
        raise ValueError(f"unknown worker role {role!r}; expected one of {', '.join(ROLES)} (or several joined with +)")
    return {"listeners", *ROLE_STAGES} if "all" in names else set(names)


class SteadyScheduler(BackgroundScheduler):
    """A ``BackgroundScheduler`` whose loop outlives a job-store error, such as the database restarting.

    APScheduler 3 survives an error of the store's ``get_due_jobs`` only: one raised by ``update_job`` or
    ``get_next_run_time`` (the database went away between two statements) ended its loop thread, and the
    worker went on running with nothing scheduled, for good (found by the fault campaign's PostgreSQL
    restart). Here such an error is logged and the loop tries again after ``jobstore_retry_interval``.

    Nor does a pass start once ``shutdown`` has begun: APScheduler's loop checks only for "paused", so a pass
    woken after the state became "stopped" handed a due job to an executor already shut down ("cannot schedule
    new futures after shutdown", logged with a traceback on one worker stop in six here). The check and the
    whole pass hold the job-store lock, which ``shutdown`` takes to shut the executors: no pass slips between.
    """

    def _process_jobs(self) -> float | None:
        # Reentrant: the pass takes the same lock inside; holding it from the check on closes the gap.
        with self._jobstores_lock:
            if self.state == STATE_STOPPED:
                return None
            try:
                wait: float | None = super()._process_jobs()
            except Exception as exc:
                log.warning(
                    "scheduler: job store unavailable (%s); trying again in %ss", exc, self.jobstore_retry_interval
                )
                return float(self.jobstore_retry_interval)
            return wait


def job_store(engine: Engine) -> SQLAlchemyJobStore:
    """The poll jobs' store in the database, its table made once even when several workers start together.

    APScheduler creates the table on start by "look, then CREATE TABLE": two listener workers starting at
    the same moment on a new database both tried, and one died of PostgreSQL's duplicate-type error (found
    by the fault campaign). Under a transaction-scoped advisory lock the second one finds the table made.
    """
    store = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lease_key("apscheduler", JOB_TABLE)})
        store.jobs_t.create(conn, checkfirst=True)
    return store


def stage_intervals(settings: Settings) -> dict[str, float]:
    """Each stage job's cadence from the settings: scoring, assignment (and the SLA/care sweep), sending."""
    return {
        "score": settings.score_seconds,
        "assign": settings.assign_seconds,
        "care": settings.assign_seconds,
        "send": settings.send_seconds,
        "notify": settings.assign_seconds,
        "refit": settings.refit_seconds,
    }


def relevance_terms(listeners: Sequence[Listener]) -> list[str]:
    """The brand terms the sources search for: each keyword source's query and the brand's handle."""
    terms: list[str] = []
    for listener in listeners:
        query = getattr(listener, "query", None)
        handle = getattr(getattr(listener, "tweets", None), "brand_username", None)
        terms.extend(t for t in (query, handle) if isinstance(t, str) and t)
    return brand_terms_of(terms)


def interval_for(intervals: Mapping[str, float], listener: Listener) -> float:
    """A source's interval: ``network:source`` if given, else ``network``, else a minute."""
    key = f"{listener.network}:{listener.source}"
    return float(intervals.get(key, intervals.get(listener.network, DEFAULT_INTERVAL)))


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
        budgets: Mapping[str, ReadBudget] | None = None,
        verify_retries: int = 0,
        care_options: CareOptions | None = None,
        sending_lease: timedelta = SENDING_LEASE,
        notify: NotifyOptions | None = None,
        brand_terms: Sequence[str] | None = None,
        refit: RefitOptions | None = None,
        sla_seconds: float = 0.0,
        upkeep_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.listeners = list(listeners)
        # What a keyword hit must name to be for the brand (classifier/relevance.py): given, or the sources' own.
        self.brand_terms = relevance_terms(self.listeners) if brand_terms is None else brand_terms_of(brand_terms)
        # When the heads are refitted on staff corrections (classifier/refit_job.py): thresholds and folds.
        self.refit_options = refit
        self.senders = senders
        self.scorer = scorer
        self.batch_size = batch_size
        self.budgets = {k: v for k, v in (budgets or {}).items() if v.limited}
        self.verify_retries = verify_retries
        # Which automatic customer messages the care stage queues (DM acks, slipped-promise updates, surveys).
        self.care_options = care_options or CareOptions()
        # The care stage's SLA sweep and knowledge upkeep run at most this often (0: on every run of the stage).
        self.sla_seconds, self.upkeep_seconds = sla_seconds, upkeep_seconds
        self._last_sla = self._last_upkeep = float("-inf")
        # How long a reply may sit in ``sending`` before the outbox decides its sender died.
        self.sending_lease = sending_lease
        # Where desk alerts are pushed (a team chat's webhook); without a URL the job does nothing.
        self.notify_options = notify or NotifyOptions()
        self.intervals: Mapping[str, float] = {}
        self.scheduler: BackgroundScheduler | None = None
        # Each stage job's runner (one run at a time, a wake-up during a run makes one more), and the LISTEN thread.
        self.runners: dict[str, StageRunner] = {}
        self.wake_listener: WakeListener | None = None
        self._scheduling = threading.Lock()
        self._stopping = False

    def listener(self, network: str, source: str) -> Listener | None:
        """The configured listener of ``network``/``source``, if any."""
        return next((x for x in self.listeners if (x.network, x.source) == (network, source)), None)

    def remove_job(self, jid: str) -> None:
        """Remove a scheduled job if it exists (not while the scheduler is shutting down)."""
        with self._scheduling:
            if self.scheduler is not None and not self._stopping:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(jid)

    def _reschedule(self, jid: str, when: datetime) -> None:
        # Jobs change the schedule under our lock: shutdown holds APScheduler's job-store lock while it
        # waits for running jobs, so a job must not start such a call once stopping has begun.
        with self._scheduling:
            if self.scheduler is not None and not self._stopping and self.scheduler.get_job(jid) is not None:
                self.scheduler.modify_job(jid, next_run_time=when)

    def wake(self, stage: str) -> None:
        """Run ``stage`` now (a notification said there is work): on a stage thread, or once more if it runs."""
        runner = self.runners.get(stage)
        if runner is None or runner.nudge():
            return
        with self._scheduling:
            if self.scheduler is not None and not self._stopping:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.modify_job(stage, jobstore="stages", next_run_time=utcnow())

    # --- the stages, callable directly (tests, `run_once`) or from scheduler jobs ---

    def poll(self, listener: Listener) -> PollOutcome:
        """Poll one source and react to its outcome (reschedule on rate limit or budget, stop on bad credentials)."""
        outcome = poll_source(self.engine, listener)
        jid = job_id(listener)
        now = utcnow()
        next_run: datetime | None = now + timedelta(seconds=interval_for(self.intervals, listener))
        throttled: str | None = None
        if outcome.status == PollStatus.RATE_LIMITED and outcome.retry_after:
            # Never sleep in a job: move its next run to when the network lets us back in.
            next_run = now + timedelta(seconds=outcome.retry_after)
        elif outcome.status == PollStatus.AUTH_FAILED:
            log.error("%s stopped: credentials refused (%s); other sources keep running", jid, outcome.error)
            self.remove_job(jid)
            next_run, throttled = None, "stopped: credentials refused"
        elif outcome.status == PollStatus.OK:
            throttled, next_run = self._pace(listener, next_run)
        self._record_schedule(listener, next_run, throttled)
        if (outcome.status == PollStatus.RATE_LIMITED or throttled is not None) and next_run is not None:
            self._reschedule(jid, next_run)
        return outcome

    def _pace(self, listener: Listener, next_run: datetime | None) -> tuple[str | None, datetime | None]:
        """Hold the next run back when the endpoint's quota is used up or the read budget runs ahead."""
        now = utcnow()
        with Session(self.engine) as session:
            cursor = get_cursor(session, network=listener.network, source=listener.source)
            exhausted = [
                (int(q["reset"]), path)
                for path, q in cursor.rate_limits.items()
                if int(q.get("remaining", 1)) <= 0 and int(q.get("reset", 0)) > time.time()
            ]
            budget = self.budgets.get(listener.network)
            pace = None
            if budget is not None:
                month = now.strftime("%Y-%m")
                rows = session.execute(
                    select(SourceCursor).where(col(SourceCursor.network) == listener.network)
                ).scalars()
                spent = [(c.month_posts_read, c.month_requests) for c in rows if c.budget_month == month]
                spend = budget.spend(posts_read=sum(p for p, _ in spent), requests=sum(r for _, r in spent))
                pace = budget.pace(spend, now)
        if exhausted:
            reset, path = max(exhausted)
            until = datetime.fromtimestamp(reset, now.tzinfo)
            return f"rate-limit quota of {path} used up until {until:%H:%M:%S} UTC", until
        if pace is not None and pace.not_before is not None and (next_run is None or pace.not_before > next_run):
            return pace.note, pace.not_before
        return None, next_run

    def _record_schedule(self, listener: Listener, next_run: datetime | None, throttled: str | None) -> None:
        with Session(self.engine) as session:
            cursor = get_cursor(session, network=listener.network, source=listener.source)
            changed = cursor.throttled != throttled
            cursor.next_run_at = next_run
            cursor.throttled = throttled[:255] if throttled else None
            session.add(cursor)
            session.commit()
        # Said once when the pace changes, not on every tick.
        if changed and throttled:
            log.warning("%s/%s: %s", listener.network, listener.source, throttled)
        elif changed:
            log.info("%s/%s: polling at its normal pace again", listener.network, listener.source)

    def score(self) -> int:
        """Score new posts until none are left (bounded per call), then re-score open posts of an older model."""
        refresh = getattr(self.scorer, "refresh", None)
        if callable(refresh):
            refresh()  # a heads version promoted by any worker: its model id is the one open posts must carry
        total = 0
        for _ in range(20):
            with Session(self.engine) as session:
                n = score_pending(
                    session, self.scorer, limit=self.batch_size, terms=self.brand_terms, after=embed_scored_posts
                )
                session.commit()
            total += n
            if n < self.batch_size:
                break
        else:
            return total  # new posts still waiting: they come before re-ranking old ones
        # After a model change the open queue is re-ranked by the new model, one batch per tick.
        with Session(self.engine) as session:
            total += rescore_open(session, self.scorer, limit=self.batch_size, terms=self.brand_terms)
            session.commit()
        return total

    def refit(self) -> RefitAttempt | None:
        """Refit the heads on staff corrections when enough have accumulated (only with a versioned transformer)."""
        from classifier.heads import VersionedScorer
        from classifier.refit_job import RefitOptions, run_refit

        if not isinstance(self.scorer, VersionedScorer):
            return None  # the lexicon baseline has no heads to refit
        return run_refit(self.engine, self.scorer, self.refit_options or RefitOptions())

    def assign(self) -> SweepResult:
        """Run one backlog sweep."""
        with Session(self.engine) as session:
            result = assign_pending(session, limit=self.batch_size * 4, rules=self.care_options.promises)
            session.commit()
        if result.held:
            log.warning("%d posts wait in the holding queue: nobody eligible is available", len(result.held))
        return result

    def care(self) -> CareStageResult:
        """Run the customer-care sweep, and the SLA sweep and knowledge upkeep when their time has come."""
        # The care stage runs every few seconds on every worker. The SLA sweep reads every open post under the team
        # lock and the upkeep every settled suggestion; due times are minutes apart, so running them on each pass
        # only took the CPU and the lock the assignment sweep needed (a profile at 50 posts/s: a fifth of the
        # worker's Python time).
        now = time.monotonic()
        sla = now - self._last_sla >= self.sla_seconds
        upkeep = now - self._last_upkeep >= self.upkeep_seconds
        if sla:
            self._last_sla = now
        if upkeep:
            self._last_upkeep = now
        return sla_and_care(self.engine, options=self.care_options, sla=sla, upkeep=upkeep)

    def send(self) -> list[SendOutcome]:
        """Send approved replies."""
        return send_approved(self.engine, self.senders, lease=self.sending_lease)

    def notify(self) -> PushResult:
        """Push new desk alerts to the team webhook, on this job's own thread (never inside a sweep)."""
        return push_pending(self.engine, self.notify_options)

    def run_once(self) -> None:
        """Run every stage once, in pipeline order."""
        for listener in self.listeners:
            self.poll(listener)
        self.score()
        self.assign()
        self.care()
        self.send()

    # --- scheduling ---

    def verified_listeners(self) -> list[Listener]:
        """Check each source's credentials; a refused one is left out with a clear message."""
        ok: list[Listener] = []
        for listener in self.listeners:
            try:
                with_retries(listener.verify, self.verify_retries)
            except AuthFailed as exc:
                log.error("%s not scheduled: credentials refused (%s)", job_id(listener), exc)
                self._record_schedule(listener, None, "stopped: credentials refused")
                continue
            except ListenerError as exc:
                log.warning("%s could not be verified now (%s); scheduling it anyway", job_id(listener), exc)
            ok.append(listener)
        return ok

    def start(
        self,
        *,
        intervals: Mapping[str, float],
        stage_seconds: float | Mapping[str, float] = DEFAULT_STAGE_SECONDS,
        persistent: bool = False,
        paused: bool = False,
        role: str = "all",
        wake: bool = False,
        safety_seconds: float = DEFAULT_SAFETY_SECONDS,
    ) -> BackgroundScheduler:
        """Start the scheduler with one job per verified source and one per stage.

        ``intervals`` is keyed by ``network:source`` or ``network``; ``stage_seconds`` is every stage job's
        cadence, or one per stage name (``score``, ``assign``, ``care``, ``send``; see ``stage_intervals``).
        With ``persistent`` the poll jobs are kept in the database: a source's pending run time (e.g. a
        rate-limit pause) survives a restart.
        With ``paused`` nothing runs until ``scheduler.resume()``. ``role`` (see ``ROLES``) picks which
        jobs this process runs: the poll jobs (``listeners``), ``score`` (``classifier``), ``assign``,
        ``care`` and ``send`` (``responder``), or all of them.
        With ``wake`` on PostgreSQL, ``score``, ``assign`` and ``send`` also run as soon as a commit notifies new
        work (``worker/wake.py``); their ticks slow to ``safety_seconds`` (never faster than asked), the net for a
        lost notification. On SQLite ``wake`` changes nothing.
        """
        global _active
        parts = role_parts(role)
        polls = "listeners" in parts
        stores: dict[str, Any] = {"stages": MemoryJobStore()}
        # Only a listeners process opens the stored poll jobs: another role must neither run nor remove them.
        stores["default"] = job_store(self.engine) if persistent and polls else MemoryJobStore()
        executors = {"default": ThreadPoolExecutor(10), "stages": ThreadPoolExecutor(STAGE_THREADS)}
        scheduler = SteadyScheduler(timezone="UTC", jobstores=stores, executors=executors)
        self._stopping = False
        self.scheduler, self.intervals, _active = scheduler, dict(intervals), self
        # Paused first, so stored jobs can be read and replaced before anything runs.
        scheduler.start(paused=True)
        now = utcnow()
        wanted = {job_id(x): x for x in self.verified_listeners()} if polls else {}
        for job in scheduler.get_jobs(jobstore="default"):
            if job.id.startswith(POLL_PREFIX) and job.id not in wanted:
                log.info("%s is not configured or not verified: its stored job is removed", job.id)
                job.remove()
        for jid, listener in wanted.items():
            every = interval_for(intervals, listener)
            stored = scheduler.get_job(jid, jobstore="default")
            # Keep a stored pause (rate limit, budget) if it is later than now; else run right away.
            first = max(now, stored.next_run_time) if stored is not None and stored.next_run_time else now
            scheduler.add_job(
                run_poll,
                "interval",
                seconds=every,
                args=[listener.network, listener.source],
                id=jid,
                jobstore="default",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                jitter=max(0.0, every / 10),
                next_run_time=first,
            )
        wanted_stages = {name for part in parts for name in ROLE_STAGES.get(part, ())}
        woken = wanted_stages & set(WAKE_STAGES) if wake and self.engine.dialect.name == "postgresql" else set()
        self.runners = {}
        stages = (("score", self.score), ("assign", self.assign), ("care", self.care), ("send", self.send),
                  ("notify", self.notify), ("refit", self.refit))  # fmt: skip
        for name, func in stages:
            if name not in wanted_stages:
                continue
            every = (
                float(stage_seconds.get(name, DEFAULT_STAGE_SECONDS))
                if isinstance(stage_seconds, Mapping)
                else float(stage_seconds)
            )
            if name == "refit" and not isinstance(stage_seconds, Mapping):
                every = max(every, DEFAULT_REFIT_SECONDS)  # one cadence for every stage is a pipeline's, not a refit's
            if name in woken:
                every = max(every, safety_seconds)
            runner = self.runners[name] = StageRunner(name, func)
            scheduler.add_job(
                runner.run,
                "interval",
                seconds=every,
                id=name,
                jobstore="stages",
                executor="stages",
                replace_existing=True,
                max_instances=2,
                coalesce=True,
                next_run_time=now,
            )
        if woken:
            self.wake_listener = WakeListener(self.engine, woken, self.wake).start()
        if not paused:
            scheduler.resume()
        return scheduler

    def stop(self) -> None:
        """Stop the scheduler, letting running jobs finish."""
        global _active
        with self._scheduling:
            self._stopping = True
        if self.wake_listener is not None:
            self.wake_listener.stop()
            self.wake_listener = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self._stopping = False
        if _active is self:
            _active = None
