"""`escucha bench chaos`: minutes of traffic on every channel through real workers, while the bench kills them.

It starts a private PostgreSQL cluster of its own (restarted once, halfway), the sandbox networks, and worker
processes in four roles (``all``, ``listeners``, ``classifier``, ``responder``: two listener and two responder
processes at any time). Customers post on every channel, comments included on page posts buried under newer
feed posts; managers approve suggested answers; the network answers 429, 5xx, slow and malformed at random;
and workers are SIGKILLed at random and replaced. Then the faults stop, the workers drain, and every post and
reply is held against the sandbox's own record of what it served and received.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import select
from sqlmodel import Session, col

from benches.campaign import Campaign, RecordingSandbox
from ground.db import make_engine
from models.schema import migrate
from models.tables import Author, Post, PostKind, Reply, ReplyKind, ReplyState
from networks.fake import SentRecord

TICK_S = 0.25
DRAIN_S = 240.0  # at most, to catch up once the faults stop (a sent-but-unrecorded reply waits out its lease)
PG_START_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    """A PostgreSQL server program (initdb, pg_ctl): on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for bin_dir in reversed(versions):
        if (bin_dir / name).is_file():
            return str(bin_dir / name)
    raise RuntimeError(f"{name} not found: install PostgreSQL's server programs (Debian: postgresql)")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port, owned by this bench: it may restart it at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.restarts = 0
        # The server refuses to run as root: run its programs as the postgres user where we are root.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Create the cluster (trust auth on loopback) and start it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-t", str(int(PG_START_S)), "-m", "fast", "-o", options, action)  # fmt: skip
        self.wait()

    def restart(self) -> float:
        """Restart the server (fast shutdown: open connections are cut); return how long it took."""
        started = time.monotonic()
        self._pg_ctl("restart")
        self.restarts += 1
        return time.monotonic() - started

    def wait(self) -> None:
        """Block until the server answers a query."""
        deadline = time.monotonic() + PG_START_S
        dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
        while True:
            try:
                with psycopg.connect(dsn, connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away)."""
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private cluster in a temporary folder, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="escucha-chaos-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the postgres user must reach its data folder inside
        pg = PrivatePostgres(Path(tmp) / "pg")
        try:
            pg.start()
            yield pg
        finally:
            pg.stop()


def _target(record: SentRecord) -> tuple[str, str, str]:
    return record.network, record.in_reply_to or record.recipient or "", record.text


def reply_tally(c: Campaign) -> dict[str, int]:
    """Approved and sent replies against what the network received, matched by target and text, not by our ids.

    A reply sent twice leaves two records on the network for one reply row (the database knows one id only),
    so each reply is looked for by where it went (the post answered, or the DM's recipient) and its words.
    """
    received = Counter(_target(r) for r in c.sandbox.sent)
    twice = lost = 0
    with Session(c.engine) as session:
        rows = session.execute(
            select(Reply, Post, Author)
            .join(Post, col(Post.id) == col(Reply.post_id))
            .outerjoin(Author, col(Author.id) == col(Post.author_id))
            .where(
                col(Reply.state).in_([ReplyState.SENT, ReplyState.SENDING, ReplyState.APPROVED])
                | col(Reply.id).in_(list(c.approved) or [-1])
            )
        ).all()
    for reply, post, author in rows:
        target = author.external_id if post.kind == PostKind.DM and author is not None else post.external_id
        copies = received[(post.network, target, reply.text)]
        twice += copies > 1
        lost += reply.kind == ReplyKind.ANSWER and reply.id in c.approved and copies == 0
    return {
        "replies_approved": len(c.approved),
        "replies_sent_on_network": len(c.sandbox.sent),
        "replies_sent_twice": twice,
        "replies_lost": lost,
    }


def post_tally(c: Campaign) -> dict[str, int]:
    """Customer posts the sandbox served against what the database holds: stored once, lost, or duplicated."""
    offered = {(net, i) for net, ids in c.customer_ids.items() for i in ids}
    offered |= {("facebook", i) for i in c.page_posts}
    with Session(c.engine) as session:
        stored = Counter((n, i) for n, i in session.execute(select(col(Post.network), col(Post.external_id))).all())
    return {
        "posts_offered": len(offered),
        "posts_stored": sum(1 for key in offered if stored[key] >= 1),
        "posts_lost": sum(1 for key in offered if stored[key] == 0),
        "posts_duplicated": sum(1 for n in stored.values() if n > 1),
    }


def bench_chaos(*, minutes: float, kills: int, seed: int = 20261206, logs: Path | None = None) -> dict[str, Any]:
    """Run the campaign for ``minutes`` with ``kills`` SIGKILLs and one PostgreSQL restart; report the tallies."""
    seconds = minutes * 60.0
    with private_postgres() as pg, tempfile.TemporaryDirectory(prefix="escucha-chaos-logs-") as tmp:
        engine = make_engine(pg.url)
        migrate(engine)
        sandbox = RecordingSandbox()
        sandbox.start()
        c = Campaign(db_url=pg.url, sandbox=sandbox, engine=engine, logs=logs or Path(tmp), seed=seed, bury=True)
        restart: dict[str, float] = {}
        started = time.monotonic()
        try:
            c.add_staff()
            c.start_workers()
            c.add_posts(20)
            # Kills spread evenly over the run (seeded jitter), the PostgreSQL restart halfway.
            step = seconds / (kills + 1)
            kill_at = sorted(step * (k + 1) + c.rng_kills.uniform(-step / 3, step / 3) for k in range(kills))
            restarter: threading.Thread | None = None
            t0 = time.monotonic()
            while (elapsed := time.monotonic() - t0) < seconds:
                if c.rng_traffic.random() < 0.5:
                    c.add_posts(1)
                if c.rng_faults.random() < 0.15:
                    c.inject_random_fault()
                c.approve_pending()
                while kill_at and elapsed >= kill_at[0]:
                    kill_at.pop(0)
                    c.kill_random_worker()
                if restarter is None and elapsed >= seconds / 2:
                    c.note("restarting PostgreSQL")
                    # In a thread: customers keep posting and the bench keeps killing while the database is away.
                    restarter = threading.Thread(target=lambda: restart.update(seconds=pg.restart()))
                    restarter.start()
                c.check_no_worker_died()
                time.sleep(TICK_S)
            if restarter is not None:
                restarter.join(timeout=120)
            sandbox.clear_faults()
            c.note("faults cleared, traffic stopped; draining")
            c.drain(DRAIN_S)
            c.stop_workers()
            c.check()
            report: dict[str, Any] = {
                **post_tally(c),
                **reply_tally(c),
                "kills": sum(w.killed for w in c.workers),
                "pg_restarts": pg.restarts,
                "pg_restart_s": round(restart.get("seconds", 0.0), 1),
                "approvals_superseded": c.superseded,
                "faults_scripted": len(c.faults),
                "faults_spent": len(sandbox.spent),
                "minutes": minutes,
                "seed": seed,
                "duration_s": round(time.monotonic() - started, 1),
                "problems": c.problems[:20],
            }
        finally:
            c.kill_all()
            sandbox.stop()
            engine.dispose()
    return report
