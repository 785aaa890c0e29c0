"""The fault-campaign harness: real worker processes on one PostgreSQL schema, the sandbox, staff, checks.

``tests/worker/test_fault_campaign.py`` runs one scenario per kind of fault; ``escucha bench chaos``
(``benches/chaos.py``) runs them all at once for minutes. The harness starts ``escucha worker``
processes (each capability in two of them), feeds the in-process sandbox a stream of X mentions, X DMs,
Facebook comments and Messenger messages, approves the suggested answers through ``responder.actions`` as
the review app does, and finally compares the database with what the sandbox itself served and received.
Every random choice comes from a ``random.Random`` seeded per stream (traffic, faults, approvals, kills).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from demo.run import settings_env
from ground.settings import Settings
from models.tables import UNAPPROVED, Author, Post, PostStatus, Reply, ReplyKind, ReplyState, SourceCursor, Staff
from networks.fake import Fault
from networks.fake import Reply as HttpReply
from responder.actions import InvalidReply, ReplyConflict, approve_reply
from sandbox.server import Sandbox, SentRecord

ROOT = Path(__file__).resolve().parents[1]
# Every capability runs in two processes, so killing any one worker never leaves a stage without one.
ROLES = ("all", "listeners", "classifier", "responder")
POLL_S = 0.7  # poll and stage cadence of the workers
HTTP_TIMEOUT_S = 1.0  # the clients' timeout: a "slow" fault answers after it
SLOW_S = HTTP_TIMEOUT_S + 0.6
# A reply in "sending" this long lost its sender; far above one HTTP call (the product default is 5 min).
SENDING_LEASE_S = 8.0
# A worker that issued no query for this long is not working (its scheduler died or it hangs). The drain
# waits for every worker to be heard from: after a job-store error the scheduler pauses 10 s.
ALIVE_WITHIN_S = 5.0
STARTUP_S = 90.0  # four Python processes starting at once on a small, busy machine
SOURCES = 5  # x mentions, search, dms; facebook feed, messages

TEXTS = (
    ("es", "mi pedido {n} no llega y nadie responde"),
    ("en", "my order {n} never arrived, I want a refund"),
    ("es", "¿a qué hora abren el domingo? pregunta {n}"),
    ("en", "the app crashes at checkout again, ticket {n}"),
    ("es", "me cobraron dos veces el pedido {n}, ¿qué pasa?"),
    ("en", "where is my parcel {n}? it has been two weeks"),
)
# The paths a scripted fault may aim at (None: whatever request comes next).
X_PATHS = ("/mentions", "/2/tweets/search", "/dm_events", "/2/tweets", "/dm_conversations", "/2/users/")
GRAPH_PATHS = ("/feed", "/comments", "/conversations", "/messages")
ANY_PATHS: tuple[str | None, ...] = (None, *X_PATHS, *GRAPH_PATHS)
FAULT_KINDS = ("429", "5xx", "slow", "malformed")
# Paths only the outbox uses (X DMs, Messenger's Send API): every DM gets an automatic acknowledgement.
SEND_PATHS = ("/dm_conversations", "/me/messages")


class RecordingSandbox(Sandbox):
    """The sandbox, also noting which request each scripted fault was spent on (method, path, fault)."""

    def __init__(self) -> None:
        super().__init__()
        self.spent: list[tuple[str, str, str]] = []
        self._request = threading.local()

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> HttpReply:
        self._request.method = method  # the server answers each request on its own thread
        return super()._dispatch(method, target, headers, body)

    def _take_fault(self, path: str) -> Fault | None:
        fault = super()._take_fault(path)
        if fault is not None:
            what = fault.kind if fault.kind != "status" else "429" if fault.status == 429 else "5xx"
            with self._lock:
                self.spent.append((getattr(self._request, "method", "?"), path, what))
        return fault


def campaign_env(db_url: str, sandbox: Sandbox) -> dict[str, str]:
    """The environment of every worker: this database, the sandbox, short cadences and timeouts, the lexicon."""
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        x_poll_seconds=POLL_S,
        facebook_poll_seconds=POLL_S,
        score_seconds=POLL_S,
        assign_seconds=POLL_S,
        send_seconds=POLL_S,
        # Small pages: a backlog spans several pages and polls, so faults land between pages too.
        x_page_size=10,
        x_max_pages=2,
        facebook_page_size=5,
        facebook_max_pages=2,
        fetch_retries=1,
        http_timeout_seconds=HTTP_TIMEOUT_S,
        sending_lease_seconds=SENDING_LEASE_S,
        **sandbox.settings_overrides(),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCUCHA_")}
    env.update(settings_env(settings))
    env["ESCUCHA_SCORER"] = "lexicon"  # fast and light: the transformer is not what is under test here
    return env


@dataclass
class WorkerProc:
    """One ``escucha worker --role ROLE`` process and its log."""

    name: str
    role: str
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False

    def tail(self, lines: int = 25) -> str:
        """The last lines of the worker's log (without APScheduler's notes on skipped overlapping runs)."""
        try:
            text_ = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        kept = [line for line in text_.splitlines() if "maximum number of running instances" not in line]
        return "\n".join(kept[-lines:])


@dataclass
class Campaign:
    """One scenario's run: workers, traffic, faults, approvals, and what each of them did."""

    db_url: str
    sandbox: RecordingSandbox
    engine: Engine
    logs: Path
    seed: int
    bury: bool = False
    workers: list[WorkerProc] = field(default_factory=list)
    # What the sandbox was given to serve: customers' posts by network, and the page's own posts.
    customer_ids: dict[str, set[str]] = field(default_factory=lambda: {"x": set(), "facebook": set()})
    page_posts: list[str] = field(default_factory=list)
    approved: dict[int, str] = field(default_factory=dict)  # reply id -> approved text
    not_approved: set[int] = field(default_factory=set)  # answers the staff chose to leave
    second_approvals: int = 0  # a second manager approving the same reply (must be refused)
    superseded: int = 0  # suggestions replaced after a reassignment while a manager was approving them
    faults: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _first_kinds: list[str] = field(default_factory=list)
    _posts: int = 0
    _spawned: int = 0
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.env = campaign_env(self.db_url, self.sandbox)
        self.rng_traffic = random.Random(f"{self.seed}:traffic")
        self.rng_faults = random.Random(f"{self.seed}:faults")
        self.rng_staff = random.Random(f"{self.seed}:staff")
        self.rng_kills = random.Random(f"{self.seed}:kills")

    def note(self, what: str) -> None:
        """Add a line to the timeline shown when the scenario fails."""
        self.timeline.append(f"{time.monotonic() - self._started:6.1f}s {what}")

    # ------------------------------------------------------------------ staff
    def add_staff(self) -> None:
        """Agents who can take every post (both languages and channels, senior) and two managers."""

        def person(name: str, role: str) -> Staff:
            channels = "public,dm" if role == "agent" else ""
            return Staff(name=name, email=f"{name.split()[0].lower()}@campaign.test", role=role, languages="es,en",
                         channels=channels, senior=True, capacity=200 if role == "agent" else 0)  # fmt: skip

        with Session(self.engine, expire_on_commit=False) as session:
            session.add_all([person(name, "agent") for name in ("Sam Carter", "Diego Fernández", "Ana Ruiz")])
            self.managers = [person(name, "manager") for name in ("Lucía Romero", "Marta Gil")]
            session.add_all(self.managers)
            session.commit()

    # ------------------------------------------------------------------ workers
    def start_worker(self, role: str) -> WorkerProc:
        """Start ``escucha worker --role ROLE``; its connections carry its name (see ``workers_alive``)."""
        self._spawned += 1
        name = f"campaign-w{self._spawned}-{role}"
        sep = "&" if "?" in self.db_url else "?"
        env = {**self.env, "ESCUCHA_DATABASE_URL": f"{self.db_url}{sep}application_name={name}"}
        log = self.logs / f"{name}.log"
        out: IO[bytes]
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
                [sys.executable, "-m", "escucha.cli", "worker", "--role", role],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = WorkerProc(name, role, proc, log)
        self.workers.append(worker)
        self.note(f"started {name} (pid {proc.pid})")
        return worker

    def start_workers(self) -> None:
        """One process per role in ``ROLES``; return once each runs and every source was polled once.

        Customers post only after that: a source's very first run backfills a bounded history (one page of
        Messenger conversations, for one), which is a choice about the past, not what is under test here.
        """
        for role in ROLES:
            self.start_worker(role)
        deadline = time.monotonic() + STARTUP_S
        while True:
            self.check_no_worker_died()
            if self.problems:
                raise AssertionError(self.summary())
            up = [w for w in self.workers if b"running with" in w.log.read_bytes()]
            with Session(self.engine) as session:
                polled = session.execute(
                    select(func.count()).where(col(SourceCursor.last_success_at).is_not(None))
                ).scalar_one()
            if len(up) == len(self.workers) and polled >= SOURCES:
                self.note("every worker runs and every source was polled")
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"workers not up after {STARTUP_S:.0f} s\n{self.summary()}")
            time.sleep(0.2)

    def running(self) -> list[WorkerProc]:
        """Workers not killed by the campaign."""
        return [w for w in self.workers if not w.killed]

    def kill_random_worker(self) -> WorkerProc:
        """SIGKILL a random running worker (seeded), then start a replacement with its role."""
        victim = self.rng_kills.choice(self.running())
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=30)
        victim.killed = True
        self.note(f"SIGKILL {victim.name}")
        return self.start_worker(victim.role)

    def check_no_worker_died(self) -> None:
        """A worker the campaign did not kill must still run."""
        for w in self.running():
            code = w.proc.poll()
            if code is not None:
                self.problems.append(f"{w.name} exited by itself with {code}:\n{w.tail()}")

    def workers_alive(self) -> list[str]:
        """Names of running workers that issued no database query within ``ALIVE_WITHIN_S`` (must be none).

        A process can be alive and still do nothing (e.g. its scheduler thread died): PostgreSQL's own view
        of each worker's connections, by application name, says when each one last asked for anything.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT application_name, EXTRACT(EPOCH FROM clock_timestamp() - max(query_start)) "
                    "FROM pg_stat_activity WHERE application_name LIKE 'campaign-w%' GROUP BY application_name"
                )
            ).all()
        quiet_for = {str(name): float(age) for name, age in rows if age is not None}
        return [w.name for w in self.running() if quiet_for.get(w.name, float("inf")) > ALIVE_WITHIN_S]

    def stop_workers(self) -> None:
        """SIGTERM every running worker, SIGKILL what does not stop within 20 s."""
        for w in self.running():
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.running():
            try:
                w.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.problems.append(f"{w.name} did not stop within 20 s of SIGTERM:\n{w.tail()}")
                w.proc.kill()
                w.proc.wait(timeout=10)

    def kill_all(self) -> None:
        """Make sure no worker outlives the test."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(timeout=10)

    # ------------------------------------------------------------------ traffic
    def add_posts(self, n: int) -> None:
        """Give the sandbox ``n`` new customer posts of random kinds (mentions, DMs, comments, messages)."""
        for _ in range(n):
            self._posts += 1
            lang, template = self.rng_traffic.choice(TEXTS)
            body = template.format(n=self._posts)
            # One author per post: a reply is looked up by its text in the customer's thread.
            author = f"cliente_{self.seed % 1000}_{self._posts}"
            kinds = ("mention", "mention", "dm", "comment", "comment", "message")
            # With ``bury``, visitors also post on the page's feed and comments land on any page post, old ones
            # too: a campaign post from last week sits under dozens of newer posts and still gets comments.
            kind = self.rng_traffic.choice((*kinds, "visitor_post", "visitor_post") if self.bury else kinds)
            if kind == "mention":
                self.customer_ids["x"].add(self.sandbox.add_mention(body, author=author, lang=lang))
            elif kind == "dm":
                self.customer_ids["x"].add(self.sandbox.add_dm(body, author=author))
            elif kind == "message":
                self.customer_ids["facebook"].add(self.sandbox.add_fb_message(body, author=author.title()))
            elif kind == "visitor_post":
                self.customer_ids["facebook"].add(self.sandbox.add_fb_post(body, author=author.title(), lang=lang))
            else:
                if not self.page_posts or self.rng_traffic.random() < (0.03 if self.bury else 0.15):
                    self.page_posts.append(self.sandbox.add_fb_post(f"Novedades de la semana {self._posts}"))
                target = self.rng_traffic.choice(self.page_posts)
                self.customer_ids["facebook"].add(self.sandbox.add_fb_comment(target, body, author=author.title()))

    # ------------------------------------------------------------------ faults
    def inject_random_fault(self) -> None:
        """Script one random fault: 429 with retry-after (X), 500/503, a slow answer past the timeout, bad JSON."""
        rng = self.rng_faults
        if not self.faults:  # the first four are one of each kind (in a seeded order), then any
            self._first_kinds = rng.sample(FAULT_KINDS, len(FAULT_KINDS))
        kind = self._first_kinds.pop() if self._first_kinds else rng.choice((*FAULT_KINDS, "5xx"))
        n = rng.randint(1, 3)
        # One fault in four aims at the outbox alone; the others at whatever comes (polls, lookups, sends).
        send_only = rng.random() < 0.25
        if kind == "429":
            # Graph has no retry-after (the product waits 5 minutes on its throttling): X only.
            path: str | None = "/dm_conversations" if send_only else rng.choice(X_PATHS)
            retry_after = rng.randint(1, 3)
            self.sandbox.fail_next(1, status=429, path_contains=path, retry_after=retry_after)
            what = f"429 retry-after {retry_after}s"
        elif kind == "5xx":
            path = rng.choice(SEND_PATHS if send_only else ANY_PATHS)
            status = rng.choice((500, 503))
            self.sandbox.fail_next(n, status=status, path_contains=path)
            what = f"{n}x {status}"
        elif kind == "slow":
            path = rng.choice(SEND_PATHS if send_only else ANY_PATHS)
            self.sandbox.slow_next(n, seconds=SLOW_S, path_contains=path)
            what = f"{n}x slow {SLOW_S}s"
        else:
            path = rng.choice(SEND_PATHS if send_only else ANY_PATHS)
            self.sandbox.malformed_next(n, path_contains=path)
            what = f"{n}x malformed JSON"
        self.faults.append(f"{what} on {path or 'any path'}")
        self.note(f"fault: {self.faults[-1]}")

    # ------------------------------------------------------------------ staff at the review desk
    def approve_pending(self) -> None:
        """Approve most suggested answers (some edited), as managers in the review app; leave a few alone.

        Now and then a second manager approves the same reply a moment later and must be refused. Database
        errors (PostgreSQL restarting) leave the reply for the next round, as a person would retry.
        """
        try:
            with Session(self.engine) as session:
                pending = list(
                    session.execute(
                        select(col(Reply.id))
                        .join(Post, col(Post.id) == col(Reply.post_id))
                        .where(
                            col(Reply.kind) == ReplyKind.ANSWER,
                            col(Reply.state).in_(UNAPPROVED),
                            col(Post.manual_only).is_(False),
                        )
                        .order_by(col(Reply.id))
                    ).scalars()
                )
                # An approval whose commit went through while its answer was lost (the database went away
                # at that moment) shows as approved by our manager: as on reloading the page, it counts.
                landed = session.execute(
                    select(col(Reply.id), col(Reply.text)).where(
                        col(Reply.kind) == ReplyKind.ANSWER,
                        col(Reply.approved_by_id) == self.managers[0].id,
                        col(Reply.id).not_in(list(self.approved) or [-1]),
                    )
                ).all()
        except SQLAlchemyError:
            return
        for reply_id, approved_text in landed:
            self.note(f"reply {reply_id} was approved though the approval seemed to fail")
            self.approved[reply_id] = approved_text
        rng = self.rng_staff
        for reply_id in pending:
            if reply_id in self.approved or reply_id in self.not_approved:
                continue
            if rng.random() < 0.15:
                self.not_approved.add(reply_id)
                continue
            edit = rng.random() < 0.3
            twice = rng.random() < 0.15
            try:
                self._approve(reply_id, edit=edit, twice=twice)
            except SQLAlchemyError as exc:
                self.note(f"approving reply {reply_id} failed ({type(exc).__name__}); retrying later")

    def _approve(self, reply_id: int, *, edit: bool, twice: bool) -> None:
        first, second = self.managers
        with Session(self.engine, expire_on_commit=False) as session:
            reply = session.get(Reply, reply_id)
            assert reply is not None
            edited = f"{reply.text} (ref {reply_id})" if edit else None
            try:
                done = approve_reply(session, reply_id=reply_id, staff=first, text=edited)
            except InvalidReply:  # the edit made it too long for X: approve the suggestion as it is
                done = approve_reply(session, reply_id=reply_id, staff=first)
            except ReplyConflict as exc:
                session.rollback()
                current = session.get(Reply, reply_id)
                if current is not None and (current.note or "").startswith("superseded"):
                    # The SLA sweep moved the post to someone else meanwhile and replaced the untouched suggestion
                    # with one in the new owner's name: the manager was told, and approves that one next round.
                    self.superseded += 1
                    self.note(f"reply {reply_id} was superseded before its approval landed")
                    return
                self.problems.append(f"approving reply {reply_id} was refused though nobody else had it: {exc}")
                return
            self.approved[reply_id] = done.text
        if twice:
            self.second_approvals += 1
            with Session(self.engine, expire_on_commit=False) as session:
                try:
                    approve_reply(session, reply_id=reply_id, staff=second)
                except ReplyConflict:
                    return
            self.problems.append(f"a second approval of reply {reply_id} was accepted")

    # ------------------------------------------------------------------ settling and checking
    def _db_post_ids(self, session: Session) -> dict[str, Counter[str]]:
        ids: dict[str, Counter[str]] = {"x": Counter(), "facebook": Counter()}
        for network, external_id in session.execute(select(col(Post.network), col(Post.external_id))).all():
            ids.setdefault(network, Counter())[external_id] += 1
        return ids

    def unsettled(self) -> str | None:
        """Why the pipeline has not caught up yet (None once it has); the drain polls this."""
        sent = self.sandbox.sent
        with Session(self.engine) as session:
            db = self._db_post_ids(session)
            missing = sum(len(ids - set(db[net])) for net, ids in self.customer_ids.items())
            if missing:
                return f"{missing} posts the sandbox holds are not stored yet"
            new = session.execute(select(func.count()).where(col(Post.status) == PostStatus.NEW)).scalar_one()
            if new:
                return f"{new} posts not scored yet"
            unassigned = session.execute(
                select(func.count()).where(col(Post.needs_response).is_(True), col(Post.assignee_id).is_(None))
            ).scalar_one()
            if unassigned:
                return f"{unassigned} posts needing a response are not assigned yet"
            undecided = (
                set(
                    session.execute(
                        select(col(Reply.id)).where(
                            col(Reply.kind) == ReplyKind.ANSWER, col(Reply.state).in_(UNAPPROVED)
                        )
                    ).scalars()
                )
                - set(self.approved)
                - self.not_approved
            )
            if undecided:
                return f"{len(undecided)} suggested answers not yet seen by the staff"
            moving = session.execute(
                select(col(Reply.state), func.count())
                .where(col(Reply.state).in_([ReplyState.APPROVED, ReplyState.SENDING]))
                .group_by(col(Reply.state))
            ).all()
            if moving:
                return "replies still on their way: " + ", ".join(f"{n} {s}" for s, n in moving)
            n_sent = session.execute(select(func.count()).where(col(Reply.state) == ReplyState.SENT)).scalar_one()
        if n_sent != len(sent):
            return f"{n_sent} replies marked sent, the sandbox received {len(sent)}"
        idle = self.workers_alive()
        if idle:
            return f"workers that issued no query for over {ALIVE_WITHIN_S:.0f} s: {idle}"
        return None

    def drain(self, seconds: float) -> None:
        """Let the workers catch up (staff keep approving) until ``unsettled`` is None, at most ``seconds``."""
        deadline = time.monotonic() + seconds
        why: str | None = "not checked yet"
        while time.monotonic() < deadline:
            self.approve_pending()
            try:
                why = self.unsettled()
            except SQLAlchemyError as exc:
                why = f"database error: {exc}"
            if why is None:
                self.note("settled")
                return
            time.sleep(0.25)
        self.problems.append(f"not settled after {seconds:.0f} s of draining: {why}")

    def check(self) -> None:
        """Compare the database with the sandbox's own record; append every mismatch to ``problems``."""
        sent = self.sandbox.sent
        own: dict[str, set[str]] = {"x": set(), "facebook": set()}
        for record in sent:
            own.setdefault(record.network, set()).add(record.external_id)
        served_x = set(self.sandbox.served_ids)
        with Session(self.engine) as session:
            db = self._db_post_ids(session)
            # In the database exactly once, by network id; nothing the sandbox did not serve.
            for network, counts in db.items():
                twice = sorted(i for i, n in counts.items() if n != 1)
                if twice:
                    self.problems.append(f"{network} posts stored more than once: {twice[:10]}")
                served = self.customer_ids.get(network, set()) | (served_x if network == "x" else set())
                if network == "facebook":
                    served |= set(self.page_posts)
                missing = served - own[network] - set(counts)
                if missing:
                    self.problems.append(
                        f"{len(missing)} {network} posts served but not stored: {sorted(missing)[:10]}"
                    )
                unknown = set(counts) - served - own[network]
                if unknown:
                    self.problems.append(
                        f"{network} posts stored that the sandbox never served: {sorted(unknown)[:10]}"
                    )
            # Every customer post needs a response and must be assigned to someone.
            customers = [(net, i) for net, ids in self.customer_ids.items() for i in ids]
            rows = {(p.network, p.external_id): p for p in session.execute(select(Post)).scalars()}
            for key in customers:
                post = rows.get(key)
                if post is None:
                    continue  # already reported as not stored
                if post.needs_response is not True:
                    self.problems.append(f"customer post {key} is not marked as needing a response")
                elif post.assignee_id is None or post.status not in (PostStatus.ASSIGNED, PostStatus.REPLIED):
                    self.problems.append(
                        f"post {key} needs a response but is {post.status}, assignee {post.assignee_id}"
                    )
            self._check_replies(session, sent)

    def _check_replies(self, session: Session, sent: list[SentRecord]) -> None:
        by_external: dict[str, list[SentRecord]] = {}
        for record in sent:
            by_external.setdefault(record.external_id, []).append(record)
        replies = session.execute(
            select(Reply, Post, Author)
            .join(Post, col(Post.id) == col(Reply.post_id))
            .outerjoin(Author, col(Author.id) == col(Post.author_id))
        ).all()
        sent_rows: Counter[str] = Counter()
        for reply, post, author in replies:
            where = f"reply {reply.id} ({reply.kind} to {post.network} {post.kind} {post.external_id})"
            if reply.state == ReplyState.SENDING:
                self.problems.append(f"{where} is stuck in sending")
            if reply.state == ReplyState.FAILED:
                self.problems.append(f"{where} failed: {reply.error}")
            if reply.id in self.approved and reply.state != ReplyState.SENT:
                self.problems.append(f"{where} was approved but is {reply.state}")
            if reply.state != ReplyState.SENT:
                continue
            if reply.kind == ReplyKind.ANSWER and reply.id not in self.approved:
                self.problems.append(f"{where} was sent but nobody approved it")
            records = by_external.get(reply.external_id or "", [])
            sent_rows[reply.external_id or ""] += 1
            if len(records) != 1:
                self.problems.append(f"{where} is marked sent as {reply.external_id}; the sandbox has {len(records)}")
                continue
            record = records[0]
            if record.network != post.network or record.text != reply.text:
                self.problems.append(f"{where}: the sandbox received {record!r}")
            if post.kind == "dm":
                expected = author.external_id if author is not None else None
                if record.recipient != expected:
                    self.problems.append(f"{where} went to {record.recipient}, not to the author {expected}")
            elif record.in_reply_to != post.external_id:
                self.problems.append(f"{where} answered {record.in_reply_to}, not {post.external_id}")
            if reply.id in self.approved and reply.text != self.approved[reply.id]:
                self.problems.append(f"{where} sent a text other than the approved one")
        # Every message the network received belongs to exactly one reply row marked sent: no duplicates.
        for record in sent:
            if sent_rows[record.external_id] != 1:
                to = record.in_reply_to or record.recipient
                self.problems.append(
                    f"the sandbox received {record.kind} {record.external_id} (to {to}) "
                    f"but {sent_rows[record.external_id]} replies are marked sent with it"
                )

    def summary(self) -> str:
        """Counts, faults, timeline and worker log tails, for a failing scenario's message."""
        lines = [f"seed {self.seed}; problems: {len(self.problems)}"]
        lines += [f"  - {p}" for p in self.problems[:30]]
        try:
            with Session(self.engine) as session:
                posts = session.execute(
                    select(col(Post.network), col(Post.status), func.count()).group_by(
                        col(Post.network), col(Post.status)
                    )
                ).all()
                replies = session.execute(
                    select(col(Reply.kind), col(Reply.state), func.count()).group_by(col(Reply.kind), col(Reply.state))
                ).all()
                cursors = session.execute(select(SourceCursor)).scalars().all()
            lines.append(f"posts by network/status: {sorted((n, s, c) for n, s, c in posts)}")
            for cur in cursors:
                lines.append(
                    f"source {cur.network}/{cur.source}: cursor {cur.cursor} paging {cur.paging} healthy {cur.healthy} "
                    f"seen {len(cur.seen_ids)} last error {cur.last_error!r}"
                )
            lines.append(f"replies by kind/state: {sorted((k, s, c) for k, s, c in replies)}")
        except SQLAlchemyError as exc:
            lines.append(f"(counts unavailable: {exc})")
        lines.append(
            f"customer posts given to the sandbox: x {len(self.customer_ids['x'])}, facebook "
            f"{len(self.customer_ids['facebook'])}; sandbox received {len(self.sandbox.sent)} replies; "
            f"approved {len(self.approved)} (a second approval refused {self.second_approvals} times), "
            f"left {len(self.not_approved)}"
        )
        lines.append(f"faults scripted: {len(self.faults)}; spent on: {self.sandbox.spent[-30:]}")
        lines.append("timeline:\n" + "\n".join(self.timeline[-40:]))
        for w in self.workers:
            state = "killed" if w.killed else f"exit {w.proc.poll()}"
            lines.append(f"--- {w.name} ({state}), log tail:\n{w.tail()}")
        return "\n".join(lines)
