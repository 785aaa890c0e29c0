"""Exactly once: the outbox against the sandbox networks, with the sender killed at each point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.registry import load_scorer
from ground.settings import Settings
from models.tables import Post, PostStatus, Reply, ReplyState, utcnow
from networks.base import Sender
from networks.registry import build_listeners, build_senders
from responder.actions import ReplyConflict, approve_reply, submit_reply
from responder.outbox import CRASH_ENV, reconcile_sending, send_approved, send_one
from sandbox.server import Sandbox
from tests.support.factories import scored_post, staff
from worker.scheduler import Worker

ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """Stands for the process dying at a checkpoint (nothing after it runs, nothing is committed)."""


def _settings(sandbox: Sandbox) -> Settings:
    return Settings(database_url="sqlite://", **sandbox.settings_overrides())


def _approved_reply(engine: Engine, sandbox: Sandbox, external_id: str) -> int:
    """Ingest, score and assign through the real pipeline, then approve the suggested reply."""
    settings = _settings(sandbox)
    worker = Worker(engine, listeners=build_listeners(settings), senders={}, scorer=load_scorer())
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Sam Carter", languages="es,en", senior=True)
        manager = staff(session, "Lucía Romero", role="manager", senior=True, channels="")
        worker.run_once()
        post = session.execute(select(Post).where(col(Post.external_id) == external_id)).scalar_one()
        reply = session.execute(
            select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == "answer")
        ).scalar_one()
        approve_reply(session, reply_id=reply.id, staff=manager)  # type: ignore[arg-type]
        return reply.id  # type: ignore[return-value]


def _target(sandbox: Sandbox, network: str) -> str:
    if network == "x":
        return sandbox.add_mention("my order #4411 never arrived, I want a refund", author="ana_g", lang="en")
    page_post = sandbox.add_fb_post("¡Nueva colección de otoño ya disponible!")
    return sandbox.add_fb_comment(page_post, "Hice un pedido hace dos semanas y no llega, ¿qué pasa?")


def _received(sandbox: Sandbox, external_id: str) -> list[str]:
    return [r.external_id for r in sandbox.sent if r.in_reply_to == external_id]


@pytest.mark.slow
@pytest.mark.parametrize("network", ["x", "facebook"])
@pytest.mark.parametrize("point", ["after_claim", "after_send", "after_commit"])
def test_sender_killed_at_each_point_sends_exactly_once(
    engine: Engine, db_url: str, sandbox: Sandbox, tmp_path: Path, network: str, point: str
) -> None:
    external_id = _target(sandbox, network)
    reply_id = _approved_reply(engine, sandbox, external_id)
    overrides = tmp_path / "settings.json"
    overrides.write_text(json.dumps(sandbox.settings_overrides()))
    env = {**os.environ, CRASH_ENV: point}
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.outbox_child", db_url, str(overrides), str(reply_id)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 137, child.stderr[-2000:]
    assert len(_received(sandbox, external_id)) == (0 if point == "after_claim" else 1)

    # The restarted sender: reconcile what was in flight, then send what is approved, twice for good measure.
    senders = build_senders(_settings(sandbox))
    reconcile_sending(engine, senders, older_than=timedelta(0))
    send_approved(engine, senders)
    send_approved(engine, senders)
    received = _received(sandbox, external_id)
    assert len(received) == 1
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None and reply.state == ReplyState.SENT and reply.external_id == received[0]
        assert session.get(Post, reply.post_id).status == PostStatus.REPLIED  # type: ignore[union-attr]


def _crash_at(name: str) -> object:
    def checkpoint(point: str) -> None:
        if point == name:
            raise Crash(point)

    return checkpoint


@pytest.mark.parametrize("network", ["x", "facebook"])
def test_dm_reply_lost_between_call_and_commit_is_found_not_resent(
    engine: Engine, sandbox: Sandbox, network: str
) -> None:
    if network == "x":
        sandbox.add_dm("hola, mi pedido no llega y necesito ayuda urgente", author="cliente_dm")
    else:
        sandbox.add_fb_message("Mi pedido no ha llegado, ¿me ayudáis?", author="Cliente Messenger")
    settings = _settings(sandbox)
    worker = Worker(engine, listeners=build_listeners(settings), senders={}, scorer=load_scorer())
    with Session(engine, expire_on_commit=False) as session:
        staff(session, "Sam Carter", languages="es,en", senior=True)
        manager = staff(session, "Lucía Romero", role="manager", senior=True, channels="")
        worker.run_once()
        post = session.execute(select(Post).where(col(Post.kind) == "dm", col(Post.network) == network)).scalar_one()
        reply = session.execute(
            select(Reply).where(col(Reply.post_id) == post.id, col(Reply.kind) == "answer")
        ).scalar_one()
        approve_reply(session, reply_id=reply.id, staff=manager)  # type: ignore[arg-type]
    senders: dict[str, Sender] = build_senders(settings)
    with pytest.raises(Crash):
        send_one(engine, senders, reply.id, checkpoint=_crash_at("after_send"))  # type: ignore[arg-type]
    assert len([r for r in sandbox.sent if r.text == reply.text]) == 1
    outcomes = reconcile_sending(engine, senders, older_than=timedelta(0))
    assert [o.result for o in outcomes] == ["found"]
    send_approved(engine, senders)
    assert len([r for r in sandbox.sent if r.text == reply.text]) == 1
    with Session(engine) as session:
        done = session.get(Reply, reply.id)
        assert done is not None and done.state == ReplyState.SENT and done.provenance is not None
        assert done.provenance["reconciled"] is True


def test_a_reply_in_sending_within_its_lease_is_left_alone(engine: Engine, sandbox: Sandbox) -> None:
    external_id = _target(sandbox, "x")
    reply_id = _approved_reply(engine, sandbox, external_id)
    senders = build_senders(_settings(sandbox))
    with pytest.raises(Crash):
        send_one(engine, senders, reply_id, checkpoint=_crash_at("after_claim"))  # type: ignore[arg-type]
    # A live sender may still be on the network: nothing happens before the lease runs out.
    assert reconcile_sending(engine, senders) == []
    assert send_approved(engine, senders) == []
    assert _received(sandbox, external_id) == []


def test_temporary_failure_backs_off_then_looks_up_before_retrying(engine: Engine, sandbox: Sandbox) -> None:
    external_id = _target(sandbox, "x")
    reply_id = _approved_reply(engine, sandbox, external_id)
    senders = build_senders(_settings(sandbox))
    sandbox.fail_next(1, status=503, path_contains="/2/tweets")
    assert send_one(engine, senders, reply_id).result == "retry"
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None and reply.state == ReplyState.APPROVED and reply.next_attempt_at is not None
    assert send_approved(engine, senders) == []  # backing off: not due yet
    before = list(sandbox.requests)
    assert send_one(engine, senders, reply_id).result == "sent"
    calls = sandbox.requests[len(before) :]
    assert any("/tweets" in c and c.startswith("GET /2/users/") for c in calls)  # looked up first
    assert len(_received(sandbox, external_id)) == 1


def test_two_different_approved_answers_to_one_post_send_once(engine: Engine, sandbox: Sandbox) -> None:
    external_id = _target(sandbox, "x")
    first = _approved_reply(engine, sandbox, external_id)
    with Session(engine, expire_on_commit=False) as session:
        post_id = session.get(Reply, first).post_id  # type: ignore[union-attr]
        second = Reply(post_id=post_id, state=ReplyState.APPROVED, text="Another answer", idempotency_key="k2")
        session.add(second)
        session.commit()
    senders = build_senders(_settings(sandbox))
    results = sorted(o.result for o in send_approved(engine, senders))
    assert results == ["sent", "skipped"]
    assert len(_received(sandbox, external_id)) == 1
    with Session(engine) as session:
        states = {r.state: r for r in (session.get(Reply, first), session.get(Reply, second.id)) if r is not None}
        assert set(states) == {ReplyState.SENT, ReplyState.FAILED}
        assert "already" in (states[ReplyState.FAILED].error or "")
        assert states[ReplyState.SENT].external_id == _received(sandbox, external_id)[0]


def test_approving_a_second_answer_after_one_was_approved_is_refused(engine: Engine, sandbox: Sandbox) -> None:
    external_id = _target(sandbox, "x")
    first = _approved_reply(engine, sandbox, external_id)
    with Session(engine, expire_on_commit=False) as session:
        post_id = session.get(Reply, first).post_id  # type: ignore[union-attr]
        agent = staff(session, "Plain Agent")
        boss = staff(session, "Other Boss", role="manager")
        extra = Reply(post_id=post_id, state=ReplyState.DRAFT, text="draft", idempotency_key="k3")
        session.add(extra)
        session.commit()
        submit_reply(session, reply_id=extra.id, staff=agent, text="My own answer")  # type: ignore[arg-type]
        with pytest.raises(ReplyConflict, match="already approved"):
            approve_reply(session, reply_id=extra.id, staff=boss)  # type: ignore[arg-type]


def _approved_rows(engine: Engine, n: int) -> tuple[list[int], list[int]]:
    """``n`` posts, each with an approved answer; return (post ids, reply ids)."""
    with Session(engine, expire_on_commit=False) as session:
        posts = [scored_post(session, text=f"pedido {i}") for i in range(n)]
        replies = [Reply(post_id=p.id, state=ReplyState.APPROVED, text=f"hola {i}", idempotency_key=f"k{i}",  # type: ignore[arg-type]
                         approved_at=utcnow()) for i, p in enumerate(posts)]  # fmt: skip
        session.add_all(replies)
        session.commit()
        return [p.id for p in posts], [r.id for r in replies]  # type: ignore[misc]


def test_responders_claiming_at_once_take_disjoint_batches(engine: Engine) -> None:
    from responder.outbox import claim_batch

    _, ids = _approved_rows(engine, 30)
    if engine.dialect.name == "postgresql":
        # Another responder holds the first ten replies (its claim is not committed yet): they are skipped.
        with Session(engine) as other:
            held = (
                other.execute(select(col(Reply.id)).where(col(Reply.id).in_(ids[:10])).with_for_update())
                .scalars()
                .all()
            )
            assert len(held) == 10
            mine = claim_batch(engine, limit=15)
            assert mine.claimed == ids[10:25] and mine.duplicates == []
        rest = claim_batch(engine, limit=50).claimed
        assert sorted(rest) == sorted(ids[:10] + ids[25:])
    else:
        assert claim_batch(engine, limit=15).claimed == ids[:15]
        assert claim_batch(engine, limit=50).claimed == ids[15:]
    assert claim_batch(engine, limit=50).claimed == []
    with Session(engine) as session:
        rows = session.execute(select(Reply).where(col(Reply.id).in_(ids))).scalars().all()
        assert {r.state for r in rows} == {ReplyState.SENDING} and {r.attempts for r in rows} == {1}


def test_a_batch_claims_one_answer_per_post_and_fails_the_duplicate(engine: Engine) -> None:
    from responder.outbox import claim_batch

    post_ids, ids = _approved_rows(engine, 2)
    with Session(engine, expire_on_commit=False) as session:
        second = Reply(post_id=post_ids[0], state=ReplyState.APPROVED, text="otra", idempotency_key="dup",
                       approved_at=utcnow())  # fmt: skip
        ack = Reply(post_id=post_ids[0], kind="ack", state=ReplyState.APPROVED, text="ack", idempotency_key="ack",
                    approved_at=utcnow())  # fmt: skip
        session.add_all([second, ack])
        session.commit()
    batch = claim_batch(engine, limit=10)
    assert batch.claimed == [ids[0], ids[1], ack.id] and batch.duplicates == [second.id]
    with Session(engine) as session:
        failed = session.get(Reply, second.id)
        assert failed is not None and failed.state == ReplyState.FAILED and "already" in (failed.error or "")


def test_one_tick_sends_batch_after_batch_exactly_once(engine: Engine, sandbox: Sandbox) -> None:
    """More approved replies than one batch: the tick claims again until none is left; each sent once."""
    settings = _settings(sandbox)
    with Session(engine, expire_on_commit=False) as session:
        targets = [sandbox.add_mention(f"pedido {i} no llega", author=f"c{i}", lang="es") for i in range(25)]
        posts = [scored_post(session, text=f"pedido {i}") for i in range(25)]
        for post, external_id in zip(posts, targets, strict=True):
            post.external_id = external_id
            session.add(post)
            session.add(Reply(post_id=post.id, state=ReplyState.APPROVED, text="Lo miramos ya",  # type: ignore[arg-type]
                              idempotency_key=f"t{external_id}", approved_at=utcnow()))  # fmt: skip
        session.commit()
    outcomes = send_approved(engine, build_senders(settings), limit=10)
    assert sorted(o.result for o in outcomes) == ["sent"] * 25
    assert sorted(r.in_reply_to for r in sandbox.sent) == sorted(targets)


def _approved_rows_for(engine: Engine, sandbox: Sandbox, n: int) -> list[str]:
    """``n`` more X mentions in the sandbox, each with an approved answer in the database; return their ids."""
    targets = [sandbox.add_mention(f"pedido {i} no llega", author=f"otro_{i}", lang="es") for i in range(n)]
    with Session(engine, expire_on_commit=False) as session:
        for i, external_id in enumerate(targets):
            post = scored_post(session, text=f"pedido {i} no llega")
            post.external_id = external_id
            session.add(post)
            session.add(Reply(post_id=post.id, state=ReplyState.APPROVED, text=f"Lo miramos ya ({i})",  # type: ignore[arg-type]
                              idempotency_key=f"more{external_id}", approved_at=utcnow()))  # fmt: skip
        session.commit()
    return targets


@pytest.mark.slow
def test_a_reply_lost_in_a_crash_is_found_behind_101_newer_replies_not_sent_again(
    engine: Engine, db_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 18's repro: the lookup once read one page of 100 of the brand's tweets and resent the rest."""
    external_id = _target(sandbox, "x")
    reply_id = _approved_reply(engine, sandbox, external_id)
    overrides = tmp_path / "settings.json"
    overrides.write_text(json.dumps(sandbox.settings_overrides()))
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.outbox_child", db_url, str(overrides), str(reply_id)],
        env={**os.environ, CRASH_ENV: "after_send"}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 137, child.stderr[-2000:]
    assert len(_received(sandbox, external_id)) == 1
    # The responder comes back and sends 101 more replies while the lost one is still within its lease.
    more = _approved_rows_for(engine, sandbox, 101)
    senders = build_senders(_settings(sandbox))
    outcomes = send_approved(engine, senders, lease=timedelta(hours=1))
    assert sorted(o.result for o in outcomes) == ["sent"] * 101
    # Restarted with a short lease: the lost reply is looked up past those 101 tweets, found, and not resent.
    send_approved(engine, senders, lease=timedelta(0))
    send_approved(engine, senders, lease=timedelta(0))
    assert len(_received(sandbox, external_id)) == 1
    assert all(len(_received(sandbox, t)) == 1 for t in more)
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None and reply.state == ReplyState.SENT
        assert reply.external_id == _received(sandbox, external_id)[0]
        assert reply.provenance is not None and reply.provenance["reconciled"] is True


def _lookup_path(network: str) -> str:
    return "/2/users/" if network == "x" else "/comments"


@pytest.mark.parametrize("network", ["x", "facebook"])
@pytest.mark.parametrize("status", [429, 503])
def test_a_lookup_that_cannot_finish_leaves_the_reply_sending_and_sends_nothing(
    engine: Engine, sandbox: Sandbox, network: str, status: int
) -> None:
    external_id = _target(sandbox, network)
    reply_id = _approved_reply(engine, sandbox, external_id)
    senders = build_senders(_settings(sandbox))
    with pytest.raises(Crash):
        send_one(engine, senders, reply_id, checkpoint=_crash_at("after_send"))  # type: ignore[arg-type]
    # Every lookup fails for now (X's 429 also spends the endpoint's window for a second).
    sandbox.fail_next(100, status=status, path_contains=_lookup_path(network), retry_after=1)
    for _ in range(3):
        assert [o.result for o in reconcile_sending(engine, senders, older_than=timedelta(0))] == ["unknown"]
        assert [o.result for o in send_approved(engine, senders, lease=timedelta(0))] == ["unknown"]
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None and reply.state == ReplyState.SENDING and reply.error
    assert len(_received(sandbox, external_id)) == 1
    # Once the network answers again the next pass settles it: found, never sent a second time.
    sandbox.clear_faults()
    deadline = time.monotonic() + 30
    while [o.result for o in reconcile_sending(engine, senders, older_than=timedelta(0))] != ["found"]:
        assert time.monotonic() < deadline, "the lookup never succeeded after the faults were cleared"
        time.sleep(0.2)
    send_approved(engine, senders, lease=timedelta(0))
    assert len(_received(sandbox, external_id)) == 1
    with Session(engine) as session:
        done = session.get(Reply, reply_id)
        assert done is not None and done.state == ReplyState.SENT


@pytest.mark.parametrize("network", ["x", "facebook"])
def test_a_failing_lookup_before_a_retry_keeps_the_reply_sending_instead_of_counting_an_attempt(
    engine: Engine, sandbox: Sandbox, network: str
) -> None:
    """A send that failed may still have reached the network: its retry looks first, and waits if it cannot look."""
    external_id = _target(sandbox, network)
    reply_id = _approved_reply(engine, sandbox, external_id)
    senders = build_senders(_settings(sandbox))
    send_path = "/2/tweets" if network == "x" else "/comments"
    sandbox.fail_next(1, status=503, path_contains=send_path)
    assert send_one(engine, senders, reply_id).result == "retry"
    sandbox.fail_next(1, status=503, path_contains=_lookup_path(network))
    assert send_one(engine, senders, reply_id).result == "unknown"
    with Session(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None and reply.state == ReplyState.SENDING and reply.attempts == 2
    assert _received(sandbox, external_id) == []
    # The next pass looks again, finds nothing there, and sends it once.
    send_approved(engine, senders, lease=timedelta(0))
    send_approved(engine, senders, lease=timedelta(0))
    assert len(_received(sandbox, external_id)) == 1
