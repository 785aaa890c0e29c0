"""Stateful property test of the outbox against the sandbox: approvals, sends, crashes, faults and restarts in any
order, with the brand's account busy in between, and never a reply sent twice or lost.

Hypothesis picks the interleaving; the sandbox's own record of what it received is the judge, matched by where a
reply went and its words (the database knows one id per reply, so it cannot see a second copy).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import update
from sqlmodel import Session, SQLModel

from ground.db import make_engine
from ground.settings import Settings
from models.tables import Author, Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, utcnow
from networks.base import ListenerError, Sender
from networks.registry import build_senders
from responder.outbox import send_approved
from sandbox.server import Sandbox


class Crash(BaseException):
    """The sender process dying at a checkpoint: nothing after it runs, nothing is committed."""


KINDS = ("mention", "dm", "comment", "message")
NETWORK = {"mention": "x", "dm": "x", "comment": "facebook", "message": "facebook"}
POST_KIND = {"mention": PostKind.MENTION, "dm": PostKind.DM, "comment": PostKind.COMMENT, "message": PostKind.DM}


class OutboxMachine(RuleBasedStateMachine):
    """One database, one sandbox, the real senders; replies approved, sent, crashed and reconciled at random."""

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = Sandbox().start()
        self.engine = make_engine("sqlite://")
        SQLModel.metadata.create_all(self.engine)
        settings = Settings(_env_file=None, fetch_retries=0, **self.sandbox.settings_overrides())  # type: ignore[call-arg]
        self.senders: dict[str, Sender] = build_senders(settings)
        self.page_post = self.sandbox.add_fb_post("Campaña de otoño")
        self.n = itertools.count(1)
        self.approved: dict[int, tuple[str, str, str]] = {}  # reply id -> (network, target, text)
        self.targets: list[tuple[str, str, str]] = []  # (network, post, kind) the brand may answer as noise

    def teardown(self) -> None:
        self.sandbox.stop()
        self.engine.dispose()

    def _copies(self) -> Counter[tuple[str, str, str]]:
        return Counter((r.network, r.in_reply_to or r.recipient or "", r.text) for r in self.sandbox.sent)

    @rule(kind=st.sampled_from(KINDS))
    def approve(self, kind: str) -> None:
        """A customer writes and a manager approves an answer (as the desk does: state approved, approved_at)."""
        n = next(self.n)
        author = f"cliente_{n}"
        if kind == "mention":
            external_id = self.sandbox.add_mention(f"mi pedido {n} no llega", author=author, lang="es")
        elif kind == "dm":
            external_id = self.sandbox.add_dm(f"hola, pedido {n}", author=author)
        elif kind == "comment":
            external_id = self.sandbox.add_fb_comment(self.page_post, f"¿y mi pedido {n}?", author=author.title())
        else:
            external_id = self.sandbox.add_fb_message(f"necesito ayuda con {n}", author=author.title())
        author_id = self._author_id(kind, external_id)
        text = f"Hola, revisamos tu pedido {n} ahora mismo."
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as s:
            row = Author(network=NETWORK[kind], external_id=author_id, username=author)
            s.add(row)
            s.flush()
            post = Post(network=NETWORK[kind], external_id=external_id, kind=POST_KIND[kind], source="test",
                        author_id=row.id, text="…", created_at=now, status=PostStatus.ASSIGNED,
                        needs_response=True, is_public=kind in ("mention", "comment"))  # fmt: skip
            s.add(post)
            s.flush()
            reply = Reply(post_id=post.id, kind=ReplyKind.ANSWER, state=ReplyState.APPROVED, text=text,
                          idempotency_key=f"k{n}", approved_at=now)  # fmt: skip
            s.add(reply)
            s.commit()
            assert reply.id is not None
        target = author_id if kind in ("dm", "message") else external_id
        self.approved[reply.id] = (NETWORK[kind], target, text)
        self.targets.append((NETWORK[kind], external_id, POST_KIND[kind]))

    def _author_id(self, kind: str, external_id: str) -> str:
        """The id the network knows the customer by (a DM goes to them, not to the message)."""
        if kind == "dm":
            event = next(e for e in self.sandbox._dm_events if e["id"] == external_id)
            return str(event["sender_id"])
        if kind == "message":
            message = next(m for m in self.sandbox._messages if m["id"] == external_id)
            return str(message["from"]["id"])
        return f"author-of-{external_id}"

    @rule(crash_at=st.sampled_from([None, "after_send", "after_send", "after_claim", "after_commit"]))
    def send(self, crash_at: str | None) -> None:
        """One outbox pass; with ``crash_at`` the process dies at that point of its first reply."""

        def checkpoint(name: str) -> None:
            if name == crash_at:
                raise Crash(name)

        with contextlib.suppress(Crash):
            send_approved(self.engine, self.senders, limit=5, rounds=1, threads=1, checkpoint=checkpoint)

    @rule()
    def restart(self) -> None:
        """A new process after the lease: replies left in ``sending`` are looked up before any resend."""
        send_approved(self.engine, self.senders, lease=timedelta(0), limit=5, rounds=1, threads=1)

    @precondition(lambda self: bool(self.targets))
    @rule(n=st.integers(min_value=90, max_value=160))
    def the_brand_is_busy(self, n: int) -> None:
        """The brand's account posts many other replies and DMs (a busy desk): newer items bury ours."""
        for i in range(n):
            network, target, kind = self.targets[i % len(self.targets)]
            # The noise is not under test: a fault it meets is spent like any other request's.
            with contextlib.suppress(ListenerError):
                text = f"otra respuesta {i} {next(self.n)}"
                self.senders[network].send_reply(
                    external_id=target, kind=kind, author_external_id=target, text=text, idempotency_key="x"
                )

    @rule(
        kind=st.sampled_from(["500", "429", "malformed"]), path=st.sampled_from([None, "/2/", "/comments", "/messages"])
    )
    def fault(self, kind: str, path: str | None) -> None:
        """The network misbehaves on its next request on ``path``."""
        if kind == "malformed":
            self.sandbox.malformed_next(1, path_contains=path)
        else:
            self.sandbox.fail_next(1, status=int(kind), path_contains=path, retry_after=1)

    @invariant()
    def never_twice(self) -> None:
        """No approved reply ever reaches the network twice."""
        copies = self._copies()
        twice = {rid: key for rid, key in self.approved.items() if copies[key] > 1}
        assert not twice, f"sent twice: {twice}"

    def check_all_sent_once(self) -> None:
        """Once faults stop and a process runs after the lease, every approved reply is on the network once."""
        self.sandbox.clear_faults()
        time.sleep(1.2)  # the sandbox's X rate-limit windows (retry-after 1 s) run on real time
        # A busy brand can spend X's 200 DMs of a 15-minute window (two busy rules of 138 and 107 DMs did): the
        # reply then waits for the window, not lost, and "time passes" here means the window is over too.
        self.sandbox.reset_rate_limits()
        with Session(self.engine) as s:  # time passes: every backoff is over
            s.execute(update(Reply).values(next_attempt_at=None))
            s.commit()
        for _ in range(4):
            send_approved(self.engine, self.senders, lease=timedelta(0), limit=50, rounds=5, threads=1)
        copies = self._copies()
        wrong = {rid: copies[key] for rid, key in self.approved.items() if copies[key] != 1}
        assert not wrong, f"replies not on the network exactly once: {wrong}"


class FinalCheck(OutboxMachine):
    """The machine, with the end-of-run check as a rule that can only run last (it clears the faults)."""

    @precondition(lambda self: bool(self.approved))
    @rule()
    def settle(self) -> None:
        """Everything approved so far ends up sent exactly once."""
        self.check_all_sent_once()


TestOutboxStateful = FinalCheck.TestCase
TestOutboxStateful.settings = settings(
    max_examples=80,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # Each step talks HTTP to the sandbox: shrinking a failure would take minutes, the unshrunk steps say enough.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
