"""`escucha bench ingest`: posts ingested per second through the real clients against the sandbox, and memory.

The sandbox runs in its own process (seeded with N mentions), so the figures are the ingest side's alone:
tweepy over HTTP, normalisation, and the page-by-page commits of posts and cursor into the database.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

import models.tables  # noqa: F401  (registers the tables)
from ground.settings import Settings
from listeners.poller import PollStatus, poll_source
from models.schema import scratch_database
from models.tables import Post
from networks.fake import SANDBOX_X_TOKEN
from networks.registry import build_listeners

PAGE_MB = 1024 * 1024


def rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * resource.getpagesize() / PAGE_MB, 1)
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024 if sys.platform != "darwin" else peak / PAGE_MB, 1)


@contextmanager
def child_url(argv: list[str], *, new_session: bool = False) -> Iterator[str]:
    """Run a sandbox child (``argv`` after the interpreter); yield the URL it prints; stop it by closing stdin."""
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        yield str(json.loads(line)["url"])
    finally:
        if child.stdin is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def sandbox_process(mentions: int) -> contextlib.AbstractContextManager[str]:
    """Start the sandbox in a child process seeded with ``mentions`` mentions; yield its URL."""
    # X caps mentions at 450 requests per 15 minutes; the bench measures our side, so lift the cap.
    return child_url(["-m", "sandbox.server", "--mentions", str(mentions), "--limit-scale", "1000"])


def bench_ingest(n: int, *, database_url: str | None = None, page_size: int = 100) -> dict[str, Any]:
    """Ingest ``n`` sandbox mentions through tweepy into the database; report throughput and memory."""
    with sandbox_process(n) as url, scratch_database(database_url) as engine:
        settings = Settings(
            _env_file=None,
            sandbox_url=url,
            x_bearer_token=SANDBOX_X_TOKEN,
            x_consumer_key="bench",
            x_consumer_secret="bench",  # noqa: S106 (the sandbox accepts any)
            x_access_token=SANDBOX_X_TOKEN,
            x_access_token_secret="bench",  # noqa: S106 (the sandbox accepts any)
            x_brand_user_id="1072250532645998596",
            x_brand_username="EscuchaHelp",
            x_dms_enabled=False,
            x_search_enabled=False,
            facebook_enabled=False,
            x_page_size=page_size,
            x_max_pages=10,
            fetch_retries=0,
        )
        (listener,) = build_listeners(settings)
        rss = {"start": rss_mb()}
        samples: list[float] = []
        inserted = polls = pages = 0
        started = time.perf_counter()
        while True:
            outcome = poll_source(engine, listener)
            if outcome.status != PollStatus.OK:
                raise RuntimeError(f"bench poll failed: {outcome.status}: {outcome.error}")
            inserted, polls, pages = inserted + outcome.inserted, polls + 1, pages + outcome.pages
            samples.append(rss_mb())
            if inserted >= n // 2 and "middle" not in rss:
                rss["middle"] = samples[-1]
            if not outcome.unfinished:
                break
        duration = time.perf_counter() - started
        rss["end"] = rss_mb()
        with Session(engine) as session:
            stored = int(session.execute(select(func.count()).select_from(Post)).scalar_one())
        backend = engine.dialect.name
    return {
        "n": n,
        "ingested": inserted,
        "stored": stored,
        "duration_s": round(duration, 2),
        "posts_per_s": round(inserted / duration, 1) if duration > 0 else None,
        "requests": pages,
        "polls": polls,
        "page_size": page_size,
        "database": backend,
        "rss_mb": rss,
        "peak_rss_mb": peak_rss_mb(),
    }
