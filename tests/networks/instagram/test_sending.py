"""Sending on Instagram through the real GraphAPI against the sandbox: exactly once, private replies, the window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from ground.settings import Settings
from models.tables import Post, PostStatus, Reply, ReplyState, Staff
from networks.base import PermanentFailure, PrivateReplier
from networks.registry import build_listeners, build_senders
from responder.actions import InvalidReply, approve_reply
from responder.outbox import CRASH_ENV, reconcile_sending, send_approved
from responder.reply_window import reply_verdict
from sandbox.server import Sandbox
from tests.support.factories import staff
from worker.scheduler import Worker

ROOT = Path(__file__).resolve().parents[3]


def _settings(sandbox: Sandbox) -> Settings:
    return Settings(database_url="sqlite://", **sandbox.settings_overrides(instagram=True))


def _ingest(engine: Engine, sandbox: Sandbox) -> Staff:
    """Ingest, score and assign the sandbox's Instagram posts through the real pipeline; return a manager."""
    listeners = [x for x in build_listeners(_settings(sandbox)) if x.network == "instagram"]
    worker = Worker(engine, listeners=listeners, senders={}, scorer=LexiconScorer())
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Sam Carter", languages="es,en", senior=True)
        manager = staff(session, "Lucía Romero", role="manager", senior=True, channels="")
    worker.run_once()
    return manager


def _answer(session: Session, external_id: str) -> tuple[Post, Reply]:
    post = session.execute(select(Post).where(col(Post.external_id) == external_id)).scalar_one()
    reply = session.execute(
        select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == "answer")
    ).scalar_one()
    return post, reply


def _targets(sandbox: Sandbox) -> dict[str, str]:
    media = sandbox.add_ig_media("¡Nueva colección de otoño!")
    return {
        "comment": sandbox.add_ig_comment(media, "Pedí hace dos semanas y no llega, ¿qué pasa?", author="ana.g"),
        "dm": sandbox.add_ig_message("Hola, mi pedido 5521 no ha llegado", author="cliente.ig"),
        "mention": sandbox.add_ig_media("otra vez sin pedido @escucha.help", author="maria"),
    }


def _arrived(sandbox: Sandbox, text: str) -> list[str]:
    return [r.external_id for r in sandbox.sent if r.network == "instagram" and r.text == text]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["comment", "dm", "mention", "private"])
@pytest.mark.parametrize("point", ["after_claim", "after_send", "after_commit"])
def test_sender_killed_at_each_point_sends_exactly_once(
    engine: Engine, db_url: str, sandbox: Sandbox, tmp_path: Path, target: str, point: str
) -> None:
    targets = _targets(sandbox)
    manager = _ingest(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        _post, reply = _answer(session, targets["comment" if target == "private" else target])
        approve_reply(session, reply_id=reply.id, staff=manager, private=target == "private")  # type: ignore[arg-type]
    overrides = tmp_path / "settings.json"
    overrides.write_text(json.dumps(sandbox.settings_overrides(instagram=True)))
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.outbox_child", db_url, str(overrides), str(reply.id)],
        env={**os.environ, CRASH_ENV: point}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 137, child.stderr[-2000:]
    assert len(_arrived(sandbox, reply.text)) == (0 if point == "after_claim" else 1)
    # The restarted sender: reconcile what was in flight, then send what is approved, twice for good measure.
    senders = build_senders(_settings(sandbox))
    reconcile_sending(engine, senders, older_than=timedelta(0))
    send_approved(engine, senders)
    send_approved(engine, senders)
    arrived = _arrived(sandbox, reply.text)
    assert len(arrived) == 1
    kinds = {r.kind for r in sandbox.sent if r.text == reply.text}
    assert kinds == {"private_reply" if target == "private" else "message" if target == "dm" else "comment"}
    with Session(engine) as session:
        done = session.get(Reply, reply.id)
        assert done is not None and done.state == ReplyState.SENT and done.external_id == arrived[0]
        assert done.private is (target == "private")
        assert session.get(Post, done.post_id).status == PostStatus.REPLIED  # type: ignore[union-attr]


def test_a_private_reply_goes_once(engine: Engine, sandbox: Sandbox) -> None:
    comment = _targets(sandbox)["comment"]
    manager = _ingest(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        post, reply = _answer(session, comment)
        assert reply_verdict(session, post, private=True).ok
        approve_reply(session, reply_id=reply.id, staff=manager, private=True)  # type: ignore[arg-type]
    senders = build_senders(_settings(sandbox))
    assert [o.result for o in send_approved(engine, senders)] == ["sent"]
    (sent,) = [r for r in sandbox.sent if r.kind == "private_reply"]
    assert sent.in_reply_to == comment and sent.recipient == sandbox.ig_user_id_of("ana.g")
    with Session(engine, expire_on_commit=False) as session:
        post, _ = _answer(session, comment)
        # A second private reply to the same comment is refused before anyone approves it, with the reason...
        second = Reply(post_id=post.id, kind="ack", text="otra", idempotency_key="second-private")  # type: ignore[arg-type]
        session.add(second)
        session.commit()
        verdict = reply_verdict(session, post, private=True, reply_id=second.id)
        assert not verdict.ok and verdict.reason == "private_once"
        assert "one private reply per comment" in verdict.explain("Instagram")
    # ...and Instagram itself refuses it too: nothing is sent twice whatever calls the sender.
    sender = senders["instagram"]
    assert isinstance(sender, PrivateReplier)
    with pytest.raises(PermanentFailure, match="already answered privately"):
        sender.send_private_reply(external_id=comment, text="otra", idempotency_key="k")
    assert len([r for r in sandbox.sent if r.kind == "private_reply"]) == 1


def test_a_private_reply_after_seven_days_is_refused_with_the_reason(engine: Engine, sandbox: Sandbox) -> None:
    media = sandbox.add_ig_media("Rebajas")
    comment = sandbox.add_ig_comment(media, "no me devolvieron el dinero", author="ana.g",
                                     at=sandbox.now() - timedelta(days=8))  # fmt: skip
    manager = _ingest(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        _post, reply = _answer(session, comment)
        with pytest.raises(InvalidReply, match="private reply only within"):
            approve_reply(session, reply_id=reply.id, staff=manager, private=True)  # type: ignore[arg-type]
        # The public reply is still open.
        approve_reply(session, reply_id=reply.id, staff=manager)  # type: ignore[arg-type]
    assert [o.result for o in send_approved(engine, build_senders(_settings(sandbox)))] == ["sent"]
    assert [r.in_reply_to for r in sandbox.sent] == [comment]


def test_outside_the_messaging_window_the_dm_is_refused_and_the_public_post_offered(
    engine: Engine, sandbox: Sandbox
) -> None:
    media = sandbox.add_ig_media("Nueva tienda")
    dm = sandbox.add_ig_message("¿dónde está mi pedido?", author="cliente.ig", at=sandbox.now() - timedelta(hours=30))
    comment = sandbox.add_ig_comment(media, "os escribí por privado y nada", author="cliente.ig")
    manager = _ingest(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        post, reply = _answer(session, dm)
        verdict = reply_verdict(session, post)
        public, public_reply = _answer(session, comment)
        assert not verdict.ok and verdict.reason == "dm_window" and verdict.public_post_id == public.id
        with pytest.raises(InvalidReply, match="messaging window"):
            approve_reply(session, reply_id=reply.id, staff=manager)  # type: ignore[arg-type]
        assert session.get(Reply, reply.id).state != ReplyState.APPROVED  # type: ignore[union-attr]
        approve_reply(session, reply_id=public_reply.id, staff=manager)  # type: ignore[arg-type]
    assert [o.result for o in send_approved(engine, build_senders(_settings(sandbox)))] == ["sent"]
    assert [(r.kind, r.in_reply_to) for r in sandbox.sent] == [("comment", comment)]


def test_inside_the_window_the_dm_goes_and_instagram_enforces_the_window_itself(
    engine: Engine, sandbox: Sandbox
) -> None:
    dm = sandbox.add_ig_message("hola, necesito cambiar la talla", author="cliente.ig")
    manager = _ingest(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        post, reply = _answer(session, dm)
        assert reply_verdict(session, post).ok
        approve_reply(session, reply_id=reply.id, staff=manager)  # type: ignore[arg-type]
    sandbox.advance(25 * 3600)  # the window closes between the approval and the send
    outcomes = send_approved(engine, build_senders(_settings(sandbox)))
    assert [o.result for o in outcomes] == ["failed"]
    with Session(engine) as session:
        failed = session.get(Reply, reply.id)
        assert failed is not None and "outside the 24-hour messaging window" in (failed.error or "")
    assert sandbox.sent == []


def test_drafts_fit_instagram_and_a_long_dm_is_refused(engine: Engine, sandbox: Sandbox) -> None:
    from networks.registry import spec_of

    spec = spec_of("instagram")
    assert spec.fit_reply("Mira https://example.com/envios y www.example.com ya") == "Mira y ya"
    assert len(spec.fit_reply("palabra " * 400)) <= 1000
    dm = sandbox.add_ig_message("hola", author="cliente.ig")
    manager = _ingest(engine, sandbox)
    with Session(engine, expire_on_commit=False) as session:
        _post, reply = _answer(session, dm)
        with pytest.raises(InvalidReply, match="Instagram allows 1000"):
            approve_reply(session, reply_id=reply.id, staff=manager, text="a" * 1500)  # type: ignore[arg-type]
