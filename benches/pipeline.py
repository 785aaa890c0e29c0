"""`escucha bench pipeline`: posts arrive at a steady rate and flow through real worker processes.

The sandbox networks run in their own process with both networks' request quotas lifted (the bench measures
our side, not X's caps). N real ``escucha worker`` processes share one scratch database (a throw-away schema on
PostgreSQL) and ingest, score and assign what arrives. The bench's own process only:

- feeds the sandbox through its admin endpoint: X mentions, X DMs and Facebook comments at ``rate`` posts/s;
- plays the team: a suggested reply is approved ``answer_after`` seconds after it was drafted, so the open
  queue stays the size a staffed desk keeps and the outbox really sends (``--no-answer`` leaves it growing);
- samples the backlog, each worker's memory (``/proc/PID/status``) and database connections every few seconds;
- at the end, accounts for every post it fed, by its id on the network: ingested, scored, assigned or waiting.

Latency is measured from the post's own time (``created_at`` as the network gives it, i.e. when it arrived in
the sandbox; Graph gives whole seconds) to its first assignment.

With ``ingest="webhooks"`` a real ``escucha webhooks`` process runs beside the workers and the sandbox pushes a
signed delivery for each new post (retried on failure, some sent twice, some held back so later ones overtake
them); the workers keep polling, more slowly, as the safety net. The report adds what the receiver counted.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from alembic import command
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import CompoundSelect, func, select, text, union, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from ground.clock import aware
from ground.db import normalise_url
from ground.settings import Settings
from ground.wake import wake
from models.schema import alembic_config, scratch_database
from models.tables import (
    Assignment,
    AuditEvent,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Score,
    Staff,
    utcnow,
)
from sandbox.seed import load_seed_texts
from sandbox.server import Sandbox
from worker.scheduler import JOB_TABLE, role_parts

log = logging.getLogger(__name__)

DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# What arrives, like the demo's channels: X mentions, X direct messages and comments on the page's posts.
MIX: tuple[tuple[str, float], ...] = (("mention", 0.5), ("dm", 0.2), ("comment", 0.3))
CUSTOMER_KINDS = (PostKind.MENTION, PostKind.DM, PostKind.COMMENT)
PAGE_POSTS = ("Nueva colección disponible", "Horario especial este fin de semana", "Sorteo de verano")
# Multiplies X's per-window caps and Graph's hourly app quota in the sandbox child.
LIMIT_SCALE = 1000
AUTHORS = 3000
READY_LINE = "running with"
POLLED_SOURCES = "SELECT count(*) FROM sourcecursor WHERE last_success_at IS NOT NULL"
SLACK_S = 5.0  # the latency target is one poll interval plus this
ANALYZE_EVERY_S = 30.0  # with autovacuum off, how often the bench refreshes the planner's statistics
FACEBOOK_PAGE_SIZE, FACEBOOK_MAX_PAGES = 100, 10
INGEST_MODES = ("poll", "webhooks")
# The sandbox's Facebook app secret in the bench: webhook deliveries are signed with it (and Graph calls prove it).
BENCH_FB_APP_SECRET = "bench-facebook-app-secret"  # noqa: S105 - the loopback sandbox's, not a real secret
# The p95 target with webhooks (issue 17): a post reaches the desk within 3 s of being written.
WEBHOOK_TARGET_S = 3.0
# The safety-net poll interval in webhook mode unless told.
WEBHOOK_POLL_SECONDS = 30.0


# --------------------------------------------------------------------------- small helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0..100) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(x, y)`` points (y per unit of x), or None with fewer than two distinct x."""
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def rnd(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MiB (``VmRSS`` in ``/proc/PID/status``); None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the bench dies, even by SIGKILL, so no worker outlives it."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[Any], *, grace: float = 30.0) -> None:
    """SIGTERM (a worker finishes its running jobs), then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --------------------------------------------------------------------------- the sandbox child


def serve_sandbox() -> None:
    """The sandbox process of the benches: ``sandbox.server`` with X's and Graph's quotas lifted."""
    import networks.facebook.fake as graph
    from sandbox.server import serve_main

    graph.SANDBOX_APP_CALLS_PER_HOUR *= LIMIT_SCALE
    serve_main(["--limit-scale", str(LIMIT_SCALE), "--fb-app-secret", BENCH_FB_APP_SECRET])


def sandbox_child() -> contextlib.AbstractContextManager[str]:
    """Run the sandbox in its own process (quotas lifted); yield its URL; it stops when we close its stdin."""
    from benches.ingest import child_url

    # A session of its own: Ctrl-C reaches the bench, which stops the children in order.
    return child_url(["-c", "from benches.pipeline import serve_sandbox; serve_sandbox()"], new_session=True)


class RemoteSandbox(Sandbox):
    """The sandbox child's ids and tokens as seen from here (never started in this process)."""

    def __init__(self, url: str) -> None:
        super().__init__(fb_app_secret=BENCH_FB_APP_SECRET)
        self._remote_url = url

    @property
    def url(self) -> str:
        return self._remote_url


def sandbox_settings(url: str) -> dict[str, Any]:
    """``Settings`` overrides that point both networks at the sandbox child (same default brand and page)."""
    return RemoteSandbox(url).settings_overrides()


# --------------------------------------------------------------------------- the database


def database_for(db_url: str | None) -> tuple[str | None, str | None]:
    """Return (URL for ``scratch_database``, warning); ``sqlite`` or any SQLite URL means a temporary file."""
    if db_url is None or db_url == "sqlite" or make_url(normalise_url(db_url)).get_backend_name() == "sqlite":
        return None, "SQLite: one writer at a time and no SKIP LOCKED claims; the bench is meant for PostgreSQL"
    return db_url, None


def engine_url(engine: Engine, application_name: str | None = None) -> str:
    """The engine's URL with its password, optionally naming the connection (PostgreSQL's application_name)."""
    url = engine.url
    if application_name and url.get_backend_name() == "postgresql":
        url = url.update_query_dict({"application_name": application_name})
    return url.render_as_string(hide_password=False)


def seed_knowledge(engine: Engine) -> int:
    """Put the demo's support manuals in the knowledge base (embedded here, once); return how many articles."""
    from classifier.e5_weights import WeightsUnavailable
    from knowledge.importer import seed_demo_manuals

    with Session(engine) as session:
        try:
            added = seed_demo_manuals(session)
        except WeightsUnavailable as exc:  # the lexicon-only install: the run goes on without a knowledge base
            log.warning("the knowledge base stays empty: %s", exc)
            return 0
        session.commit()
    return int(added)


def seed_team(engine: Engine, *, staff: int, capacity: int) -> None:
    """A bilingual team on both channels, half of it senior, each able to hold ``capacity`` open posts."""
    with Session(engine) as session:
        session.add_all(
            Staff(
                name=f"Agent {i}",
                email=f"agent{i}@bench.escucha",
                languages="es,en",
                channels="public,dm",
                senior=i % 2 == 0,
                capacity=capacity,
            )
            for i in range(staff)
        )
        session.commit()


# --------------------------------------------------------------------------- workers


@dataclass(slots=True)
class WorkerProc:
    """One ``escucha worker`` child and what the bench sampled of it."""

    index: int
    role: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    app_name: str
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the load, MiB)
    connections: list[int] = field(default_factory=list)

    def log_text(self) -> str:
        """The process's log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def start_workers(roles: Sequence[str], env: dict[str, str], db: Engine, logs: Path) -> list[WorkerProc]:
    """Start one ``escucha worker --role ROLE`` per role, each logging to its own file."""
    started: list[WorkerProc] = []
    tag = f"escucha-bench-{os.getpid()}"
    for i, role in enumerate(roles):
        path = logs / f"worker-{i}.log"
        app_name = f"{tag}-w{i}"
        child_env = {**env, "ESCUCHA_DATABASE_URL": engine_url(db, app_name)}
        with path.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
                [sys.executable, "-m", "escucha.cli", "--log-level", "INFO", "worker", "--role", role],
                env=child_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        started.append(WorkerProc(i, role, proc, path, app_name))
    return started


def free_port() -> int:
    """A TCP port free on loopback now (the receiver binds it a moment later)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_receiver(
    env: dict[str, str], db: Engine, logs: Path, *, index: int, timeout: float
) -> tuple[WorkerProc, str]:
    """Start ``escucha webhooks`` on a free port; return it (sampled like a worker) once it answers, and its URL."""
    port = free_port()
    path = logs / "webhooks.log"
    app_name = f"escucha-bench-{os.getpid()}-hooks"
    child_env = {**env, "ESCUCHA_DATABASE_URL": engine_url(db, app_name)}
    with path.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "escucha.cli", "--log-level", "WARNING", "webhooks", "--port", str(port)],
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    receiver = WorkerProc(index, "webhooks", proc, path, app_name)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the webhook receiver exited with {proc.returncode}:\n{receiver.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=2).ok:
                return receiver, url
        if time.monotonic() - started > timeout:
            stop_process(proc)
            raise RuntimeError(f"the webhook receiver did not answer within {timeout:.0f}s:\n{receiver.tail()}")
        time.sleep(0.2)


def webhook_report(receiver_url: str, sandbox_url: str, *, settle_s: float = 30.0) -> dict[str, Any]:
    """Once the sandbox has nothing left to deliver: what it sent, and what the receiver counted."""
    deadline = time.monotonic() + settle_s
    sent: dict[str, Any] = {}
    while time.monotonic() < deadline:
        sent = requests.get(f"{sandbox_url}/_sandbox/webhooks", timeout=10).json()
        if not sent.get("pending"):
            break
        time.sleep(0.5)
    got = requests.get(f"{receiver_url}/healthz", timeout=10).json()
    return {
        "received": got["received"],
        "verified": got["verified"],
        # Duplicates are refused (409) like any replay, so they are among the rejected too.
        "rejected": got["rejected"],
        "rejected_not_duplicates": got["rejected"] - got["duplicated"],
        "duplicated": got["duplicated"],
        "unavailable_503": got["unavailable"],
        "posts_stored_by_webhook": got["stored_posts"],
        # Verified deliveries share transactions (webhooks/writer.py): fewer than deliveries under load.
        "store_transactions": got.get("transactions"),
        "sandbox": sent,
    }


def wait_until_ready(workers: Sequence[WorkerProc], engine: Engine, *, sources: int, timeout: float) -> float:
    """Wait until every worker says it runs and every source was polled once; return the seconds it took."""
    started = time.monotonic()
    while True:
        for w in workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker {w.index} ({w.role}) exited with {w.proc.returncode}:\n{w.tail()}")
        running = all(READY_LINE in w.log_text() for w in workers)
        polled = 0
        if running:
            with Session(engine) as session:
                polled = int(session.execute(text(POLLED_SOURCES)).scalar_one())
        if running and polled >= sources:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            tails = "\n".join(f"--- worker {w.index} ({w.role})\n{w.tail()}" for w in workers)
            raise RuntimeError(f"workers not ready after {timeout:.0f}s ({polled}/{sources} sources polled)\n{tails}")
        time.sleep(0.5)


def db_connections(engine: Engine, workers: Sequence[WorkerProc]) -> dict[str, int]:
    """Open PostgreSQL connections of each worker (by application_name); empty on SQLite."""
    if engine.dialect.name != "postgresql":
        return {}
    names = [w.app_name for w in workers]
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name = ANY(:n) GROUP BY 1"),
            {"n": names},
        ).all()
    return {str(name): int(n) for name, n in rows}


# --------------------------------------------------------------------------- the load


@dataclass(slots=True)
class Feed:
    """What the feeder thread put into the sandbox: (network, id) → seconds into the load when it arrived."""

    arrivals: dict[tuple[str, str], float] = field(default_factory=dict)
    channels: dict[tuple[str, str], str] = field(default_factory=dict)  # (network, id) → mention, dm, comment
    by_channel: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    last_error: str | None = None
    behind_s: float = 0.0  # how far the feeder fell behind its schedule at worst

    def __len__(self) -> int:
        return len(self.arrivals)


def make_page_posts(url: str, http: requests.Session) -> list[str]:
    """The page's own posts that customers comment on."""
    ids = []
    for message in PAGE_POSTS:
        response = http.post(f"{url}/_sandbox/add_fb_post", json={"text": message}, timeout=10)
        response.raise_for_status()
        ids.append(str(response.json()["id"]))
    return ids


def unique_texts(texts: Sequence[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """``count`` (lang, text) pairs cycling through ``texts``, each repeat marked ("… #2"): no two posts alike.

    Why: real posts are nearly all different, and the knowledge encoder keeps the vectors of texts it saw lately;
    a bench that cycled 2,000 texts through 15,000 posts embedded each one once and read the rest from that memo.
    """
    if not texts:
        return []
    n = len(texts)
    return [(texts[i % n][0], texts[i % n][1] if i < n else f"{texts[i % n][1]} #{i // n + 1}") for i in range(count)]


def customer_item(
    *, i: int, rng: random.Random, texts: Sequence[tuple[str, str]], page_posts: Sequence[str]
) -> tuple[str, str, dict[str, Any]]:
    """Customer post number ``i`` (a channel drawn from ``MIX``): (channel, network, sandbox ``add_many`` item)."""
    channels, weights = zip(*MIX, strict=True)
    channel = rng.choices(channels, weights)[0]
    lang, body = texts[i % len(texts)]
    who = rng.randrange(AUTHORS)
    followers = int(rng.lognormvariate(5, 2))
    payload: dict[str, Any]
    if channel == "mention":
        route, network = "add_mention", "x"
        payload = {"text": body, "author": f"bench_{lang}_{who}", "lang": lang, "followers": followers}
    elif channel == "dm":
        route, network = "add_dm", "x"
        payload = {"text": body, "author": f"bench_{lang}_{who}", "followers": followers, "lang": lang}
    else:
        route, network = "add_fb_comment", "facebook"
        payload = {"post_id": page_posts[i % len(page_posts)], "text": body, "author": f"Bench {lang} {who}"}
    return channel, network, {"route": route, "args": payload}


def post_customer(
    http: requests.Session,
    url: str,
    *,
    i: int,
    rng: random.Random,
    texts: Sequence[tuple[str, str]],
    page_posts: Sequence[str],
) -> tuple[str, str, str]:
    """Put one customer post into the sandbox (a channel drawn from ``MIX``); return (channel, network, id)."""
    channel, network, item = customer_item(i=i, rng=rng, texts=texts, page_posts=page_posts)
    response = http.post(f"{url}/_sandbox/{item['route']}", json=item["args"], timeout=10)
    response.raise_for_status()
    return channel, network, str(response.json()["id"])


# At most this many posts per request to the sandbox: a feeder that fell behind catches up in a few requests.
FEED_BATCH_MAX = 500
# How often the feeder sends what became due (posts due within one tick go in one request).
FEED_TICK_S = 0.1


def feed_sandbox(
    url: str,
    *,
    rate: float,
    seconds: float,
    texts: Sequence[tuple[str, str]],
    page_posts: Sequence[str],
    feed: Feed,
    stop: threading.Event,
    seed: int = 7,
    started: float | None = None,
    tick: float = FEED_TICK_S,
) -> None:
    """Post ``rate`` new customer posts per second into the sandbox for ``seconds`` (on a fixed schedule).

    Post ``i`` is due ``i / rate`` seconds into the load. Every ``tick`` the posts that became due go to the
    sandbox in one ``add_many`` request, so one HTTP round trip per tick, not per post, bounds the rate; the
    sandbox stamps each post with the moment it adds it (its ``created_at``), the time latency is measured
    from. ``feed.behind_s`` is how late the last post of a request was at worst.
    """
    rng = random.Random(seed)
    http = requests.Session()
    start = started if started is not None else time.monotonic()
    total = math.ceil(rate * seconds)
    i = 0
    while not stop.is_set() and i < total:
        now = time.monotonic() - start
        due = min(total, math.floor(now * rate) + 1)
        if due <= i:
            if stop.wait(max(0.0, min(tick, i / rate - now))):
                break
            continue
        first, last = i, min(due, i + FEED_BATCH_MAX)
        made = [customer_item(i=n, rng=rng, texts=texts, page_posts=page_posts) for n in range(first, last)]
        i = last
        try:
            response = http.post(f"{url}/_sandbox/add_many", json={"items": [m[2] for m in made]}, timeout=30)
            response.raise_for_status()
            ids = [str(x) for x in response.json()["ids"]]
            if len(ids) != len(made):
                raise ValueError(f"the sandbox added {len(ids)} of {len(made)} posts")
        except (requests.RequestException, ValueError, KeyError) as exc:
            feed.failures += len(made)
            feed.last_error = f"posts {first}..{last - 1}: {exc}"[:300]
            continue
        at = time.monotonic() - start
        feed.behind_s = max(feed.behind_s, at - (last - 1) / rate)
        for (channel, network, _), external_id in zip(made, ids, strict=True):
            feed.arrivals[(network, external_id)] = at
            feed.channels[(network, external_id)] = channel
            feed.by_channel[channel] += 1
        if stop.wait(tick):
            break


# --------------------------------------------------------------------------- sampling and the team


@dataclass(slots=True)
class Counts:
    """Where the fed posts are now, counted in the database."""

    ingested: int
    scored: int
    assigned: int


def given_to_someone() -> CompoundSelect:
    """The ids of posts a person was given: by an assignment row, or by joining its owner's conversation."""
    # A new message in an owned conversation joins its owner without an assignment row of its own (see account()).
    return union(
        select(col(Assignment.post_id)),
        select(col(AuditEvent.post_id)).where(
            col(AuditEvent.action) == "joined_conversation", col(AuditEvent.post_id).is_not(None)
        ),
    )


def count_stages(engine: Engine) -> Counts:
    """Customer posts stored, scored, and given to someone (at least once), as the report's accounting counts them."""
    # Why the joined messages count: counted by assignment rows alone, the live backlog grew by every message that
    # joined a conversation (1,196 in a 300 s run) and the report called a drained pipeline "not draining".
    with Session(engine) as session:
        rows = session.execute(
            select(col(Post.status), func.count()).where(col(Post.kind).in_(CUSTOMER_KINDS)).group_by(col(Post.status))
        ).all()
        assigned = session.execute(select(func.count()).select_from(given_to_someone().subquery())).scalar_one()
    by_status = {str(s): int(n) for s, n in rows}
    ingested = sum(by_status.values())
    return Counts(ingested=ingested, scored=ingested - by_status.get(PostStatus.NEW, 0), assigned=int(assigned))


def approve_due(engine: Engine, *, older_than: float) -> int:
    """Play the team: approve every suggested answer drafted at least ``older_than`` seconds ago."""
    now = utcnow()
    with Session(engine) as session:
        result = session.execute(
            update(Reply)
            .where(
                col(Reply.kind) == ReplyKind.ANSWER,
                col(Reply.state).in_([ReplyState.SUGGESTED, ReplyState.PENDING_APPROVAL]),
                col(Reply.created_at) <= now - timedelta(seconds=older_than),
            )
            .values(
                state=ReplyState.APPROVED, approved_at=now, approved_by_id=col(Reply.author_staff_id), updated_at=now
            )
            .execution_options(synchronize_session=False)
        )
        approved = int(result.rowcount)  # type: ignore[attr-defined]
        if approved:
            wake(session, "send")  # as the desk's approve_reply does
        session.commit()
        return approved


@dataclass(slots=True)
class Sample:
    t: float  # seconds into the load
    arrived: int
    counts: Counts

    @property
    def backlog(self) -> int:
        return self.arrived - self.counts.assigned


# --------------------------------------------------------------------------- the report


def _series_summary(points: Sequence[tuple[float, float]], *, load_s: float) -> dict[str, float | None]:
    """start / middle / end / peak of a sampled series, and its slope per minute over the load."""
    if not points:
        return {"start": None, "middle": None, "end": None, "peak": None, "slope_per_min": None}
    during = [(t, v) for t, v in points if 0 <= t <= load_s] or list(points)
    middle = min(during, key=lambda p: abs(p[0] - load_s / 2))[1]
    per_s = slope(during)
    return {
        "start": during[0][1],
        "middle": middle,
        "end": during[-1][1],
        "peak": max(v for _, v in points),
        "slope_per_min": rnd(per_s * 60 if per_s is not None else None),
    }


def _latency(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": rnd(percentile(values, 50)),
        "p95": rnd(percentile(values, 95)),
        "max": rnd(max(values, default=None)),
    }


def account(engine: Engine, feed: Feed, *, load_start: datetime, warmup_s: float, load_s: float) -> dict[str, Any]:
    """Find every fed post in the database by its network id and say where it is; latencies from its own time."""
    with Session(engine) as session:
        posts = session.execute(
            select(
                col(Post.id),
                col(Post.network),
                col(Post.external_id),
                col(Post.status),
                col(Post.needs_response),
                col(Post.held_since),
                col(Post.created_at),
                col(Post.ingested_at),
            ).where(col(Post.kind).in_(CUSTOMER_KINDS))
        ).all()
        scored_at: dict[int, datetime] = {
            int(pid): at for pid, at in session.execute(select(col(Score.post_id), col(Score.scored_at))).all()
        }
        first_assigned: dict[int, datetime] = {
            int(pid): at
            for pid, at in session.execute(
                select(col(Assignment.post_id), func.min(col(Assignment.assigned_at))).group_by(col(Assignment.post_id))
            ).all()
        }
        # A new message in a conversation someone owns joins its owner without an assignment row of its own (the
        # conversation counts once): it is given to a person when it joins. Counted as waiting before, it left
        # ~200 posts "waiting for assignment" after every drain.
        for pid, at in session.execute(
            select(col(AuditEvent.post_id), func.min(col(AuditEvent.at)))
            .where(col(AuditEvent.action) == "joined_conversation", col(AuditEvent.post_id).is_not(None))
            .group_by(col(AuditEvent.post_id))
        ).all():
            if pid is not None and (int(pid) not in first_assigned or at < first_assigned[int(pid)]):
                first_assigned[int(pid)] = at
        # None twice: one row per network id, whichever way (poll, webhook, both) it came; one score per post.
        stored_twice = session.execute(
            select(func.count()).select_from(
                select(col(Post.network), col(Post.external_id))
                .group_by(col(Post.network), col(Post.external_id))
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        scored_twice = session.execute(
            select(func.count()).select_from(
                select(col(Score.post_id)).group_by(col(Score.post_id)).having(func.count() > 1).subquery()
            )
        ).scalar_one()
        # Claims are safe across workers: no post may have two open assignments at once.
        double = session.execute(
            select(func.count()).select_from(
                select(col(Assignment.post_id))
                .where(col(Assignment.ended_at).is_(None))
                .group_by(col(Assignment.post_id))
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
    found = {(p.network, p.external_id): p for p in posts}
    unexpected = len(found.keys() - feed.arrivals.keys())
    mine = [found[key] for key in feed.arrivals if key in found]
    unscored = len([p for p in mine if p.status == PostStatus.NEW])
    no_action = len([p for p in mine if p.status == PostStatus.NO_ACTION])
    needing = [p for p in mine if p.needs_response]
    assigned = [p for p in needing if p.id in first_assigned]
    waiting = [p for p in needing if p.id not in first_assigned]
    not_ingested = len(feed.arrivals) - len(mine)
    # Scored, needing no response, and yet not left as no-action (a replied post whose need was cleared after its
    # reply was approved, say): none of the counts above holds it, so it is named here for the reader to look up.
    unplaced = [p for p in mine if not p.needs_response and p.status not in (PostStatus.NEW, PostStatus.NO_ACTION)]
    missing = Counter(feed.channels.get(key, "?") for key in feed.arrivals if key not in found)
    backlog = not_ingested + unscored + len(waiting)
    window_start = load_start + timedelta(seconds=warmup_s)
    window_end = load_start + timedelta(seconds=load_s)
    steady = [p for p in assigned if aware(p.created_at) >= window_start]
    to_assign = [(aware(first_assigned[p.id]) - aware(p.created_at)).total_seconds() for p in steady]
    ingest = [(aware(p.ingested_at) - aware(p.created_at)).total_seconds() for p in steady]
    score = [(aware(scored_at[p.id]) - aware(p.ingested_at)).total_seconds() for p in steady if p.id in scored_at]
    assign = [
        (aware(first_assigned[p.id]) - aware(scored_at[p.id])).total_seconds() for p in steady if p.id in scored_at
    ]
    in_window = len([p for p in assigned if window_start <= aware(first_assigned[p.id]) <= window_end])
    return {
        "arrived": len(feed.arrivals),
        "ingested": len(mine),
        "scored": len(mine) - unscored,
        "needing_response": len(needing),
        "no_action": no_action,
        "assigned": len(assigned),
        "backlog": {
            "total": backlog,
            "not_ingested": not_ingested,
            "not_ingested_by_channel": dict(sorted(missing.items())),
            "unscored": unscored,
            "waiting_assignment": len(waiting),
            "held": sum(1 for p in waiting if p.held_since is not None),
        },
        "balanced": len(assigned) + backlog + no_action == len(feed.arrivals),
        "unplaced": {
            "count": len(unplaced),
            "by_status": dict(sorted(Counter(str(p.status) for p in unplaced).items())),
            "posts": [f"{p.network}:{p.external_id}" for p in unplaced[:20]],
        },
        "unexpected_posts": unexpected,
        "double_assigned": int(double),
        "stored_twice": int(stored_twice),
        "scored_twice": int(scored_twice),
        "assigned_in_window": in_window,
        "latency_posts": len(to_assign),
        "to_assign_s": _latency(to_assign),
        "stage_latency_s": {"ingest": _latency(ingest), "score": _latency(score), "assign": _latency(assign)},
    }


def account_sends(engine: Engine, url: str, *, load_start: datetime, warmup_s: float, load_s: float) -> dict[str, Any]:
    """What the outbox sent, checked against what the sandbox recorded (exactly once)."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Reply.kind), col(Reply.state), col(Reply.approved_at), col(Reply.sent_at))
        ).all()
    sent = [r for r in rows if r.state == ReplyState.SENT]
    window_start = load_start + timedelta(seconds=warmup_s)
    window_end = load_start + timedelta(seconds=load_s)
    in_window = sum(1 for r in sent if r.sent_at and window_start <= aware(r.sent_at) <= window_end)
    waits = [(aware(r.sent_at) - aware(r.approved_at)).total_seconds() for r in sent if r.sent_at and r.approved_at]
    states = Counter(f"{r.kind}:{r.state}" for r in rows)
    response = requests.get(f"{url}/_sandbox/sent", timeout=60)
    recorded = response.json().get("sent") if response.ok else None
    steady_s = max(1e-9, load_s - warmup_s)
    return {
        "replies_by_kind_state": dict(sorted(states.items())),
        "sent": len(sent),
        "answers_sent": sum(1 for r in sent if r.kind == ReplyKind.ANSWER),
        "acks_sent": sum(1 for r in sent if r.kind == ReplyKind.ACK),
        "failed": sum(1 for r in rows if r.state == ReplyState.FAILED),
        "sends_per_s": round(in_window / steady_s, 2),
        "approved_to_sent_s": _latency(waits),
        # What the networks received: one record per reply the outbox marked sent, no more, no fewer.
        "sandbox_recorded": len(recorded) if recorded is not None else None,
        "exactly_once": recorded is not None and len(recorded) == len(sent),
    }


# --------------------------------------------------------------------------- the run


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """The knobs of one pipeline bench."""

    rate: float = 50.0
    seconds: float = 600.0
    workers: int = 2
    roles: tuple[str, ...] | None = None  # one process per role; overrides ``workers``
    db_url: str | None = DEFAULT_DB_URL
    scorer: str = "transformer"
    poll_seconds: float = 5.0
    stage_seconds: float = 2.0
    ingest: str = "poll"  # or "webhooks": the sandbox pushes each post to a real `escucha webhooks`
    wake: bool = True  # stages woken by NOTIFY (ESCUCHA_WAKE_STAGES); False: the fixed ticks alone
    safety_seconds: float = 10.0  # the woken stages' tick (ESCUCHA_WAKE_SAFETY_SECONDS)
    webhook_duplicate_rate: float = 0.02  # deliveries the sandbox sends twice
    webhook_reorder_rate: float = 0.05  # deliveries held back up to a second, so later ones overtake them
    webhook_senders: int = 8  # deliveries in flight at once (the networks deliver concurrently)
    staff: int = 100
    answer: bool = True
    answer_after: float = 10.0
    knowledge: bool = True  # the demo's support manuals in the knowledge base, as a configured desk has them
    unique_texts: bool = True  # no two posts with the same text (see unique_texts)
    sample_every: float | None = None  # default: every 5 s, more often in runs shorter than 50 s
    drain_seconds: float | None = None  # default: two poll intervals plus the slack
    ready_timeout: float = 300.0
    seed: int = 7
    # Threads each worker gives its models (ESCUCHA_MODEL_THREADS); None: the machine's cores shared out among the
    # workers, as docs/capacity.md tells a deployment to do.
    model_threads: int | None = None

    def threads_per_worker(self) -> int:
        """The model threads each worker gets: as asked, else the cores divided among the processes that run models."""
        if self.model_threads is not None:
            return self.model_threads
        # A listeners-only process loads no model; the classifier scores and the responder embeds for the manuals.
        modelling = [r for r in self.process_roles() if role_parts(r) & {"classifier", "responder"}]
        return max(1, usable_cores() // max(1, len(modelling)))

    def process_roles(self) -> list[str]:
        """The role of each worker process, checked: together they must run every part of the pipeline."""
        roles = list(self.roles) if self.roles else ["all"] * self.workers
        if not roles:
            raise ValueError("at least one worker is needed")
        parts: set[str] = set()
        for role in roles:
            parts |= role_parts(role)
        missing = {"listeners", "classifier", "responder"} - parts
        if missing:
            raise ValueError(f"no worker runs {', '.join(sorted(missing))}: posts would never get through")
        return roles


def worker_env(options: PipelineOptions, url: str) -> dict[str, str]:
    """The workers' environment: the sandbox, the bench's cadence, only the fed sources, the chosen scorer."""
    from demo.run import settings_env

    settings = Settings(
        _env_file=None,
        x_poll_seconds=options.poll_seconds,
        facebook_poll_seconds=options.poll_seconds,
        score_seconds=options.stage_seconds,
        assign_seconds=options.stage_seconds,
        send_seconds=options.stage_seconds,
        wake_stages=options.wake,
        wake_safety_seconds=options.safety_seconds,
        # The sandbox delivers every post from one address: the per-address allowance must not throttle the bench.
        webhooks_rate_per_minute=max(600.0, options.rate * 60 * 4),
        # Paging for this volume (docs/capacity.md, "Poll settings"): at 50 posts/s a page post gets 5 comments/s
        # and as many answers from the brand on the same edge, beyond Graph's default 25 × 3 per poll.
        facebook_page_size=FACEBOOK_PAGE_SIZE,
        facebook_max_pages=FACEBOOK_MAX_PAGES,
        x_search_enabled=False,
        facebook_messages_enabled=False,
        model_threads=options.threads_per_worker(),
        **sandbox_settings(url),
    )
    env = {**os.environ, **settings_env(settings)}
    env.pop("ESCUCHA_DATABASE_URL", None)
    env.pop("ESCUCHA_SCORER", None)
    if options.scorer == "lexicon":
        env["ESCUCHA_SCORER"] = "lexicon"
    return env


Progress = Callable[[Sample, str], None]


def autovacuum_on(engine: Engine) -> bool:
    """Whether the server runs autovacuum (and so keeps the planner's statistics fresh); True off PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return True
    with engine.connect() as conn:
        return str(conn.execute(text("SHOW autovacuum")).scalar_one()).lower() == "on"


def analyze_schema(engine: Engine) -> None:
    """ANALYZE the scratch schema's tables, what autovacuum does for a deployment as tables grow.

    Why: with autovacuum off, a schema made at the start of the run keeps its empty-table statistics, and the
    planner picks plans for empty tables (a rating lookup scanned a whole index per open post: 4.6 s a sweep).
    """
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        names = ", ".join(f'"{name}"' for name in tables)
        if names:
            conn.execute(text(f"ANALYZE {names}"))
            conn.commit()


def run_pipeline(options: PipelineOptions, *, progress: Progress | None = None) -> dict[str, Any]:
    """Run the bench (see the module docstring) and return its report."""
    if options.scorer not in ("lexicon", "transformer"):
        raise ValueError("scorer must be lexicon or transformer")
    if options.rate <= 0 or options.seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    if options.ingest not in INGEST_MODES:
        raise ValueError(f"ingest must be one of {', '.join(INGEST_MODES)}")
    hooks = options.ingest == "webhooks"
    roles = options.process_roles()
    scratch_url, warning = database_for(options.db_url)
    if warning:
        log.warning("%s", warning)
    expected = math.ceil(options.rate * options.seconds)
    capacity = math.ceil(expected * 1.2 / options.staff) + 10
    texts = load_seed_texts(2000, Settings(_env_file=None).data_dir)
    if options.unique_texts:
        texts = unique_texts(texts, expected)
    listen = any("listeners" in role_parts(r) for r in roles)
    sources = 3 if listen else 0  # x/mentions, x/dms, facebook/feed
    drain_s = options.drain_seconds if options.drain_seconds is not None else 2 * options.poll_seconds + SLACK_S
    # The steady window starts once the first posts had time to go all the way through (by webhook: at once).
    first_in = 1.0 if hooks else options.poll_seconds
    warmup_s = min(options.seconds / 2, 2 * first_in + 2 * options.stage_seconds)
    every = options.sample_every or min(5.0, max(1.0, options.seconds / 10))
    workers: list[WorkerProc] = []
    stop = threading.Event()
    feeder: threading.Thread | None = None
    feed = Feed()
    samples: list[Sample] = []
    approved = approve_errors = 0
    webhooks: dict[str, Any] | None = None
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(sandbox_child())
        engine = stack.enter_context(scratch_database(scratch_url))
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="escucha-bench-")))
        # The schema is the models' (create_all); stamped so each worker's own migrate() has nothing to do.
        command.stamp(alembic_config(engine), "head")
        # Workers that start together race to create APScheduler's job table (CREATE TABLE is not atomic with
        # its existence check on PostgreSQL) and the loser exits; a deployment must create it once, as here.
        SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE).jobs_t.create(engine, checkfirst=True)
        seed_team(engine, staff=options.staff, capacity=capacity)
        articles = seed_knowledge(engine) if options.knowledge else 0
        http = requests.Session()
        page_posts = make_page_posts(url, http)

        def cleanup() -> None:
            stop.set()
            if feeder is not None:
                feeder.join(15)
            for w in workers:
                stop_process(w.proc)

        stack.callback(cleanup)
        env = worker_env(options, url)
        workers.extend(start_workers(roles, env, engine, logs))
        ready_s = wait_until_ready(workers, engine, sources=sources, timeout=options.ready_timeout)
        receiver_url: str | None = None
        if hooks:
            receiver, receiver_url = start_receiver(
                env, engine, logs, index=len(workers), timeout=options.ready_timeout
            )
            workers.append(receiver)
            pushing = http.post(
                f"{url}/_sandbox/webhooks",
                json={
                    "url": receiver_url,
                    "duplicate_rate": options.webhook_duplicate_rate,
                    "reorder_rate": options.webhook_reorder_rate,
                    "senders": options.webhook_senders,
                    "seed": options.seed,
                },
                timeout=10,
            )
            pushing.raise_for_status()
        load_start = utcnow()
        started = time.monotonic()
        feeder = threading.Thread(
            target=feed_sandbox,
            kwargs=dict(
                url=url,
                rate=options.rate,
                seconds=options.seconds,
                texts=texts,
                page_posts=page_posts,
                feed=feed,
                stop=stop,
                seed=options.seed,
                started=started,
            ),
            name="bench-feed",
            daemon=True,
        )
        feeder.start()
        drained_at: float | None = None
        phase, load_end, backlog_at_end = "load", options.seconds, 0
        analyze_every = ANALYZE_EVERY_S if not autovacuum_on(engine) else None
        analyzed_at = time.monotonic()
        while True:
            next_tick = time.monotonic() + every
            t = time.monotonic() - started
            for w in workers:
                if w.proc.poll() is not None:
                    raise RuntimeError(f"worker {w.index} ({w.role}) exited with {w.proc.returncode}:\n{w.tail()}")
                mb = rss_mb(w.proc.pid)
                if mb is not None:
                    w.rss.append((t, mb))
            conns = db_connections(engine, workers)
            for w in workers:
                w.connections.append(conns.get(w.app_name, 0))
            if options.answer:
                try:
                    approved += approve_due(engine, older_than=options.answer_after)
                except DBAPIError as exc:  # a lock conflict with a sweep: the next tick approves them
                    approve_errors += 1
                    log.debug("approving failed this tick: %s", exc)
            if analyze_every is not None and time.monotonic() - analyzed_at >= analyze_every:
                analyze_schema(engine)
                analyzed_at = time.monotonic()
            sample = Sample(t=t, arrived=len(feed), counts=count_stages(engine))
            samples.append(sample)
            if progress is not None:
                progress(sample, phase)
            if phase == "load" and not feeder.is_alive():
                phase, load_end = "drain", t
                backlog_at_end = sample.backlog
            if phase == "drain" and (sample.backlog == 0 or t - load_end >= drain_s):
                drained_at = t
                break
            time.sleep(max(0.0, next_tick - time.monotonic()))
        rss_end = {w.index: rss_mb(w.proc.pid) for w in workers}
        load_s = min(options.seconds, load_end)
        if receiver_url is not None:
            webhooks = webhook_report(receiver_url, url)
        # Let the outbox finish what was approved, then stop the workers and count.
        for w in workers:
            stop_process(w.proc, grace=60)
        accounting = account(engine, feed, load_start=load_start, warmup_s=warmup_s, load_s=load_s)
        sends = (
            account_sends(engine, url, load_start=load_start, warmup_s=warmup_s, load_s=load_s)
            if options.answer
            else None
        )
        with Session(engine) as session:
            model_ids = {
                str(m): int(n)
                for m, n in session.execute(select(col(Score.model_id), func.count()).group_by(col(Score.model_id)))
            }
        database = engine.dialect.name
    steady_s = max(1e-9, load_s - warmup_s)
    during = [(s.t, float(s.backlog)) for s in samples if s.t <= load_s]
    tail = [p for p in during if p[0] >= load_s / 2] or during
    per_s = slope(tail)
    target = WEBHOOK_TARGET_S if hooks else options.poll_seconds + SLACK_S
    in_flight = options.rate * target
    p95 = accounting["to_assign_s"]["p95"]
    arrivals_in_window = sum(1 for at in feed.arrivals.values() if warmup_s <= at <= load_s)
    return {
        "database": database,
        "rate": options.rate,
        "seconds": options.seconds,
        "roles": roles,
        "ingest": options.ingest,
        "wake": options.wake,
        "knowledge_articles": articles,
        "unique_texts": options.unique_texts,
        "safety_seconds": options.safety_seconds if options.wake else None,
        "scorer": {"requested": options.scorer, "model_ids": model_ids},
        "poll_seconds": options.poll_seconds,
        "stage_seconds": options.stage_seconds,
        "model_threads": options.threads_per_worker(),
        "cpu_count": usable_cores(),
        "staff": options.staff,
        "sample_every_s": every,
        # Set when the server's autovacuum is off (the shared test server): the bench then refreshes the planner's
        # statistics itself, as autovacuum's analyze does on a deployment (docs/capacity.md, "Settings").
        "analyze_every_s": analyze_every,
        "ready_s": round(ready_s, 1),
        "steady_window_s": [round(warmup_s, 1), round(load_s, 1)],
        "arrival_per_s": round(arrivals_in_window / steady_s, 2),
        "sustained_posts_per_s": round(accounting["assigned_in_window"] / steady_s, 2),
        "arrived": accounting["arrived"],
        "arrived_by_channel": dict(sorted(feed.by_channel.items())),
        "feed_failures": feed.failures,
        "feed_last_error": feed.last_error,
        "feed_behind_max_s": round(feed.behind_s, 2),
        "ingested": accounting["ingested"],
        "scored": accounting["scored"],
        "needing_response": accounting["needing_response"],
        "no_action": accounting["no_action"],
        "assigned": accounting["assigned"],
        "backlog": {
            "at_end_of_load": backlog_at_end,
            "first": int(during[0][1]) if during else None,
            "last": int(during[-1][1]) if during else None,
            "max": int(max((v for _, v in during), default=0)),
            "slope_posts_per_s": rnd(per_s, 3),
            # Not growing over the second half of the load, or no more than the target's worth in flight.
            "draining": (per_s is not None and per_s <= 0.05 * options.rate) or backlog_at_end <= in_flight,
            "samples": [[round(s.t, 1), s.backlog] for s in samples],
            "drain_s": round((drained_at or load_end) - load_end, 1),
            "after_drain": accounting["backlog"]["total"],
            **{k: v for k, v in accounting["backlog"].items() if k != "total"},
        },
        "balanced": accounting["balanced"],
        "stored_twice": accounting["stored_twice"],
        "scored_twice": accounting["scored_twice"],
        # Every post fed found where it is, nothing there that was not fed, no post stored, scored or owned twice.
        "accounted_for": (
            accounting["balanced"]
            and accounting["unexpected_posts"] == 0
            and accounting["double_assigned"] == 0
            and accounting["stored_twice"] == 0
            and accounting["scored_twice"] == 0
        ),
        "unplaced": accounting["unplaced"],
        "unexpected_posts": accounting["unexpected_posts"],
        "double_assigned": accounting["double_assigned"],
        "latency_posts": accounting["latency_posts"],
        "p50_to_assign_s": accounting["to_assign_s"]["p50"],
        "p95_to_assign_s": p95,
        "max_to_assign_s": accounting["to_assign_s"]["max"],
        "stage_latency_s": accounting["stage_latency_s"],
        "target_p95_s": target,
        "meets_target": p95 is not None and p95 <= target,
        "workers": [
            {
                "index": w.index,
                "role": w.role,
                "pid": w.proc.pid,
                "rss_mb": {**_series_summary(w.rss, load_s=load_s), "end": rss_end.get(w.index)},
                "db_connections": {
                    "peak": max(w.connections, default=0),
                    "last": w.connections[-1] if w.connections else 0,
                },
                "log_errors": sum(1 for line in w.log_text().splitlines() if " ERROR " in line or "Traceback" in line),
            }
            for w in workers
        ],
        "webhooks": webhooks,
        "answers": (
            {"answer_after_s": options.answer_after, "approved": approved, "approve_conflicts": approve_errors, **sends}
            if sends is not None
            else None
        ),
    }


def run_with_progress(options: PipelineOptions, *, show: bool = True) -> dict[str, Any]:
    """Run the bench with a progress bar on standard error; SIGTERM stops it cleanly like Ctrl-C."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() else None
    bar = Progress(
        TextColumn("[bold]{task.fields[phase]}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        disable=not show,
        transient=False,
    )
    try:
        with bar:
            task = bar.add_task("bench", total=options.seconds, phase="starting", status="sandbox, database, workers")

            def report(sample: Sample, phase: str) -> None:
                c = sample.counts
                status = (
                    f"arrived {sample.arrived} · ingested {c.ingested} · scored {c.scored} · "
                    f"assigned {c.assigned} · backlog {sample.backlog}"
                )
                bar.update(task, completed=min(sample.t, options.seconds), phase=phase, status=status)

            return run_pipeline(options, progress=report)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
