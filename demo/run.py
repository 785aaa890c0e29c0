"""`escucha demo`: the whole product on the embedded default, against the loopback sandbox networks."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

from sqlalchemy.engine import make_url

from classifier.registry import load_scorer
from demo.people import run_people
from ground.db import make_engine
from ground.settings import Settings
from knowledge.importer import seed_demo_manuals
from models.schema import migrate
from models.staff import ensure_demo_team
from networks.registry import build_listeners, build_senders, poll_intervals
from responder.notify import notify_options
from review_app.launch import stop_child, stop_on_signals, streamlit_command
from sandbox.seed import load_seed_texts, seed_cross_channel, seed_sandbox
from sandbox.server import Sandbox
from worker.scheduler import Worker, care_options

log = logging.getLogger(__name__)

SEED_POSTS = 240  # "a few hundred": enough to fill the queue, small enough to assign within seconds
DRIP_EVERY_S = 4.0  # a new post now and then, so the desk looks alive
DEMO_POLL_S = 3.0


def fresh_sqlite(url: str) -> None:
    """Delete a SQLite demo database and its WAL files, so every demo starts from the same state."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


def settings_env(settings: Settings) -> dict[str, str]:
    """Turn settings into ESCUCHA_* variables for a child process (secrets included, never printed)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[f"ESCUCHA_{name.upper()}"] = str(raw)
    return env


def _drip(sandbox: Sandbox, texts: list[tuple[str, str]], stop: threading.Event, rng: random.Random) -> None:
    """Feed the sandbox one new post every few seconds until stopped."""
    i = 0
    while texts and not stop.wait(DRIP_EVERY_S):
        seed_sandbox(sandbox, [texts[i % len(texts)]], rng, instagram=True)
        i += 1


def run_demo(base: Settings, *, headless: bool, seconds: float | None, port: int, seed: int = 7) -> int:
    """Run the demo: sandbox, worker and (unless headless) the review app; return an exit code."""
    fresh_sqlite(base.database_url)
    engine = make_engine(base.database_url)
    migrate(engine)
    from sqlmodel import Session

    with Session(engine) as session:
        added = ensure_demo_team(session)
        # The demo's manuals, so its suggestions answer the seeded questions instead of only acknowledging them.
        articles = seed_demo_manuals(session)
        session.commit()
    log.info("database ready at %s (%d demo staff added)", make_url(base.database_url).render_as_string(), added)
    log.info("knowledge base: %d demo article versions", articles)

    rng = random.Random(seed)
    texts = load_seed_texts(SEED_POSTS + 200, base.data_dir)
    sandbox = Sandbox().start()
    seed_sandbox(sandbox, texts[:SEED_POSTS], rng, instagram=True)
    seed_cross_channel(sandbox)
    log.info("sandbox networks at %s with %d seeded posts", sandbox.url, min(SEED_POSTS, len(texts)))

    # The demo's own settings: the sandbox's tokens and URL, quick polling, the same database.
    settings = Settings(
        database_url=base.database_url,
        data_dir=base.data_dir,
        x_poll_seconds=DEMO_POLL_S,
        facebook_poll_seconds=DEMO_POLL_S,
        instagram_poll_seconds=DEMO_POLL_S,
        **sandbox.settings_overrides(instagram=True),
    )
    worker = Worker(
        engine,
        listeners=build_listeners(settings),
        senders=build_senders(settings),
        scorer=load_scorer(),
        batch_size=settings.batch_size,
        care_options=care_options(settings),
        notify=notify_options(settings),
        sla_seconds=settings.sla_seconds,
        upkeep_seconds=settings.upkeep_seconds,
    )
    worker.start(intervals=poll_intervals(settings, worker.listeners), stage_seconds=1.0)
    stop = threading.Event()
    dripper = threading.Thread(target=_drip, args=(sandbox, texts[SEED_POSTS:], stop, rng), daemon=True)
    dripper.start()
    # A manager approving suggestions and customers answering the satisfaction question, so the demo shows both.
    people = threading.Thread(target=run_people, args=(engine, sandbox, stop), daemon=True)
    people.start()
    app: subprocess.Popen[bytes] | None = None
    # SIGTERM becomes a KeyboardInterrupt here, so the review app, the worker and the sandbox are all stopped.
    with stop_on_signals():
        try:
            if not headless:
                app = subprocess.Popen(  # noqa: S603 - our own interpreter and app path
                    streamlit_command(port=port, headless=True),
                    env={**os.environ, **settings_env(settings)},
                )
                url = f"http://localhost:{port}"
                log.info("review app on %s (Ctrl-C stops the demo)", url)
                if os.environ.get("DISPLAY") or sys.platform in ("darwin", "win32"):
                    # Streamlit's own browser opening asks for an e-mail first; open it ourselves instead.
                    threading.Timer(3.0, webbrowser.open, args=[url]).start()
            deadline = time.monotonic() + seconds if seconds else None
            while deadline is None or time.monotonic() < deadline:
                if app is not None and app.poll() is not None:
                    log.error("the review app exited with code %s", app.returncode)
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            log.info("stopping the demo")
        finally:
            # A second signal while stopping must not cut the clean-up short.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            stop.set()
            if app is not None:
                stop_child(app)
            dripper.join(DRIP_EVERY_S + 5)
            people.join(30)
            worker.stop()
            # A graceful stop drains the pipeline: what the sandbox served is ingested, scored and assigned.
            worker.run_once()
            sandbox.stop()
            engine.dispose()
    return 0
