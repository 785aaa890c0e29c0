"""`escucha bench chaos`: its tallies catch a reply sent twice or lost, and a post lost, by the network's record."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from benches.campaign import Campaign, RecordingSandbox
from benches.chaos import post_tally, reply_tally
from ground.settings import Settings
from models.tables import Reply, ReplyKind, ReplyState
from networks.registry import build_senders
from tests.support.factories import scored_post


def _campaign(engine: Engine, sandbox: RecordingSandbox, tmp_path: Path) -> Campaign:
    return Campaign(db_url="sqlite://", sandbox=sandbox, engine=engine, logs=tmp_path, seed=1)


def _sent_reply(engine: Engine, sandbox: RecordingSandbox, text: str) -> tuple[int, str]:
    """An answer marked sent in the database to a fresh mention on the sandbox; its id and the mention's id."""
    with Session(engine, expire_on_commit=False) as s:
        post = scored_post(s)
        post.external_id = sandbox.add_mention(f"where is my order? ({text})")
        s.add(post)
        reply = Reply(post_id=post.id, kind=ReplyKind.ANSWER, state=ReplyState.SENT, text=text, idempotency_key=text)
        s.add(reply)
        s.commit()
        assert reply.id is not None
        return reply.id, post.external_id


def test_reply_tally_counts_copies_on_the_network_not_rows_in_the_database(engine: Engine, tmp_path: Path) -> None:
    with RecordingSandbox() as sandbox:
        sender = build_senders(Settings(_env_file=None, **sandbox.settings_overrides()))["x"]  # type: ignore[call-arg]
        c = _campaign(engine, sandbox, tmp_path)
        once, to_once = _sent_reply(engine, sandbox, "sent once")
        twice, to_twice = _sent_reply(engine, sandbox, "sent twice")
        lost, _ = _sent_reply(engine, sandbox, "never reached the network")
        c.approved = {once: "sent once", twice: "sent twice", lost: "never reached the network"}
        for external_id, text in ((to_once, "sent once"), (to_twice, "sent twice"), (to_twice, "sent twice")):
            sender.send_reply(external_id=external_id, kind="mention", author_external_id=None, text=text,
                              idempotency_key=text)  # fmt: skip
        tally = reply_tally(c)
    assert tally == {"replies_approved": 3, "replies_sent_on_network": 3, "replies_sent_twice": 1, "replies_lost": 1}


def test_post_tally_counts_what_the_sandbox_served_and_the_database_lacks(engine: Engine, tmp_path: Path) -> None:
    with RecordingSandbox() as sandbox:
        c = _campaign(engine, sandbox, tmp_path)
        with Session(engine) as s:
            stored = scored_post(s, network="x").external_id
        c.customer_ids = {"x": {stored, "never-stored"}, "facebook": set()}
        c.page_posts = ["page-post-never-stored"]
        assert post_tally(c) == {"posts_offered": 3, "posts_stored": 1, "posts_lost": 2, "posts_duplicated": 0}
