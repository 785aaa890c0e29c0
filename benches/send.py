"""`escucha bench send`: approved replies sent per second by one process's outbox, through the real senders.

The sandbox runs in its own process (quotas lifted, like ``bench pipeline``). N customer posts (X mentions, X DMs,
Facebook comments, in the pipeline bench's mix) are put into it and ingested with the real listeners; each gets an
approved answer; then ``send_approved`` runs tick after tick, as the worker's send job does, until none is left.
The sandbox's record of what it received is checked against the outbox: every reply exactly once.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from typing import Any

import requests
from sqlalchemy import func, select
from sqlmodel import Session, col

import models.tables  # noqa: F401  (registers the tables)
from benches.pipeline import CUSTOMER_KINDS, make_page_posts, post_customer, sandbox_child, sandbox_settings
from ground.settings import Settings
from listeners.poller import poll_source
from models.schema import scratch_database
from models.tables import Post, Reply, ReplyKind, ReplyState, utcnow
from networks.registry import build_listeners, build_senders
from responder.outbox import send_approved
from sandbox.seed import load_seed_texts

SEED = 7
MAX_POLLS = 200


def bench_send(n: int = 2000, *, database_url: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Ingest ``n`` sandbox posts, approve an answer to each, send them all; report sends per second."""
    if n <= 0:
        raise ValueError("n must be positive")
    with sandbox_child() as url, scratch_database(database_url) as engine:
        settings = Settings(
            _env_file=None,
            x_search_enabled=False,
            facebook_messages_enabled=False,
            fetch_retries=0,
            **sandbox_settings(url),
        )
        http = requests.Session()
        page_posts = make_page_posts(url, http)
        listeners = build_listeners(settings)
        # A first poll sets every source's cursor, so what follows is read as new posts, not a capped backfill.
        for listener in listeners:
            poll_source(engine, listener)
        rng = random.Random(SEED)
        texts = load_seed_texts(2000, settings.data_dir)
        channels = Counter(
            post_customer(http, url, i=i, rng=rng, texts=texts, page_posts=page_posts)[0] for i in range(n)
        )
        for _ in range(MAX_POLLS):
            outcomes = [poll_source(engine, listener) for listener in listeners]
            if not any(o.inserted or o.unfinished for o in outcomes):
                break
        now = utcnow()
        with Session(engine) as session:
            posts = list(session.execute(select(col(Post.id)).where(col(Post.kind).in_(CUSTOMER_KINDS))).scalars())
            session.add_all(
                Reply(post_id=pid, kind=ReplyKind.ANSWER, state=ReplyState.APPROVED, approved_at=now,
                      text=f"Gracias por escribirnos, ya lo estamos revisando ({i}).",
                      suggested_text=f"Gracias por escribirnos, ya lo estamos revisando ({i}).",
                      idempotency_key=uuid.uuid4().hex)
                for i, pid in enumerate(posts)
            )  # fmt: skip
            session.commit()
        senders = build_senders(settings)
        results: Counter[str] = Counter()
        ticks = 0
        started = time.perf_counter()
        while True:
            outcomes_ = send_approved(engine, senders, limit=limit)
            ticks += 1
            results.update(o.result for o in outcomes_)
            if not outcomes_:
                break
        seconds = time.perf_counter() - started
        with Session(engine) as session:
            states = dict(session.execute(select(col(Reply.state), func.count()).group_by(col(Reply.state))).all())
            by_network = dict(
                session.execute(
                    select(col(Post.network), func.count())
                    .join(Reply, col(Reply.post_id) == col(Post.id))
                    .where(col(Reply.state) == ReplyState.SENT)
                    .group_by(col(Post.network))
                ).all()
            )
        response = requests.get(f"{url}/_sandbox/sent", timeout=60)
        recorded = response.json().get("sent") if response.ok else None
        backend = engine.dialect.name
    sent = int(states.get(ReplyState.SENT, 0))
    return {
        "database": backend,
        "n": n,
        "fed_by_channel": dict(sorted(channels.items())),
        "ingested": len(posts),
        "limit": limit,
        "ticks": ticks,
        "outcomes": dict(sorted(results.items())),
        "replies_by_state": {str(k): int(v) for k, v in sorted(states.items())},
        "sent_by_network": {str(k): int(v) for k, v in sorted(by_network.items())},
        "sent": sent,
        "seconds": round(seconds, 3),
        "sends_per_s": round(sent / seconds, 1) if seconds > 0 else None,
        "ms_per_send": round(1000 * seconds / sent, 1) if sent else None,
        "sandbox_recorded": len(recorded) if recorded is not None else None,
        "exactly_once": recorded is not None and len(recorded) == sent,
    }
