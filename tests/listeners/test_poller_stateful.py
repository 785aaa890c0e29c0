"""Stateful property test of the poll loop against the sandbox: customers post on every channel (comments on
old, buried page posts too), the networks fail and time passes in any order, and every post the networks served
ends up stored exactly once.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select
from sqlmodel import Session, SQLModel, col

from ground.db import make_engine
from ground.settings import Settings
from listeners.poller import PollStatus, poll_source
from models.tables import Post
from networks.base import Listener
from networks.registry import build_listeners
from sandbox.server import Sandbox

SOURCES = ("mentions", "dms", "search", "feed", "messages")


class PollerMachine(RuleBasedStateMachine):
    """One database, one sandbox, the real listeners with small pages; posts, faults and polls in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = Sandbox().start()
        self.engine = make_engine("sqlite://")
        SQLModel.metadata.create_all(self.engine)
        # Small pages and few per poll: a backlog spans polls, and a fault can land between two pages of a run.
        config = Settings(_env_file=None, fetch_retries=0, x_page_size=10, x_max_pages=2, facebook_page_size=5,
                          facebook_max_pages=2, **self.sandbox.settings_overrides())  # type: ignore[call-arg]  # fmt: skip
        self.listeners: dict[str, Listener] = {x.source: x for x in build_listeners(config)}
        self.n = itertools.count(1)
        self.served: dict[str, set[str]] = {"x": set(), "facebook": set()}
        self.page_posts: list[str] = [self.sandbox.add_fb_post("Campaña de otoño")]
        self.served["facebook"].add(self.page_posts[0])
        # Every source's first poll (a bounded backfill of the past, a choice not under test) happens first.
        for listener in self.listeners.values():
            poll_source(self.engine, listener)

    def teardown(self) -> None:
        self.sandbox.stop()
        self.engine.dispose()

    @rule(kind=st.sampled_from(["mention", "dm", "search", "comment", "old_comment", "message", "visitor_post"]))
    def customer_writes(self, kind: str) -> None:
        """One new customer post on one channel (``old_comment``: on the oldest page post, however buried)."""
        n = next(self.n)
        text, author = f"mi pedido {n} no llega", f"cliente_{n}"
        if kind == "mention":
            self.served["x"].add(self.sandbox.add_mention(text, author=author, lang="es"))
        elif kind == "dm":
            self.served["x"].add(self.sandbox.add_dm(text, author=author))
        elif kind == "search":
            self.served["x"].add(self.sandbox.add_search_hit(f"{self.sandbox.page_name} {text}", author=author))
        elif kind == "message":
            self.served["facebook"].add(self.sandbox.add_fb_message(text, author=author.title()))
        elif kind == "visitor_post":
            self.served["facebook"].add(self.sandbox.add_fb_post(text, author=author.title()))
        else:
            post = self.page_posts[0] if kind == "old_comment" else self.page_posts[-1]
            self.served["facebook"].add(self.sandbox.add_fb_comment(post, text, author=author.title()))

    @rule(n=st.integers(min_value=10, max_value=40))
    def the_feed_fills_up(self, n: int) -> None:
        """Visitors and the page post a lot: older page posts sink under ``n`` newer ones."""
        for _ in range(n):
            k = next(self.n)
            self.served["facebook"].add(self.sandbox.add_fb_post(f"visita {k}", author=f"Visitante {k}"))
        self.page_posts.append(self.sandbox.add_fb_post(f"Novedades {next(self.n)}"))
        self.served["facebook"].add(self.page_posts[-1])

    @rule(
        kind=st.sampled_from(["500", "429", "malformed"]),
        path=st.sampled_from([None, "/mentions", "/dm_events", "/feed", "/comments", "/?ids", "/messages"]),
    )
    def network_fails(self, kind: str, path: str | None) -> None:
        """The network misbehaves on its next request on ``path`` (possibly in the middle of a paged run)."""
        if kind == "malformed":
            self.sandbox.malformed_next(1, path_contains=path)
        else:
            self.sandbox.fail_next(1, status=int(kind), path_contains=path, retry_after=1)

    @rule(source=st.sampled_from(SOURCES))
    def poll(self, source: str) -> None:
        """One poll of one source; a failure becomes an outcome, never an exception."""
        poll_source(self.engine, self.listeners[source])

    @invariant()
    def stored_once_and_only_what_was_served(self) -> None:
        """Nothing is stored twice, and nothing the sandbox never served."""
        stored = self._stored()
        assert not [key for key, n in stored.items() if n > 1]
        own = {r.external_id for r in self.sandbox.sent}
        strangers = {i for (net, i) in stored if i not in self.served[net] | own}
        assert not strangers, strangers

    def _stored(self) -> Counter[tuple[str, str]]:
        with Session(self.engine) as s:
            return Counter(s.execute(select(col(Post.network), col(Post.external_id))).all())  # type: ignore[arg-type]

    @rule()
    def catch_up(self) -> None:
        """Faults stop; polling until the sources are quiet stores everything the networks served."""
        self.sandbox.clear_faults()
        self.sandbox.advance(2)  # rate-limit windows (retry-after 1 s) are over
        # Until two rounds in a row end with every source healthy, no paged run left unfinished and nothing new: a
        # bounded page budget per poll (2 pages of 5 feed items) means a feed that grew by hundreds of posts takes
        # dozens of polls; a round of already-stored pages stores nothing while its run goes on; and a run that
        # ends was listing from before the newest post, which the next run, from the top, reads. So neither a
        # fixed count of rounds nor one quiet round says the sources are quiet.
        quiet = 0
        for _ in range(80):
            # Dozens of rounds would spend X's 15-minute request windows (real time): time passes, they are over.
            self.sandbox.reset_rate_limits()
            outcomes = [poll_source(self.engine, listener) for listener in self.listeners.values()]
            calm = all(o.status == PollStatus.OK and not o.unfinished and not o.inserted for o in outcomes)
            quiet = quiet + 1 if calm else 0
            if quiet == 2:
                break
        stored = {i for (_, i) in self._stored()}
        missing = {net: sorted(ids - stored) for net, ids in self.served.items() if ids - stored}
        assert not missing, f"served but never stored: {missing}"


TestPollerStateful = PollerMachine.TestCase
TestPollerStateful.settings = settings(
    max_examples=40,
    stateful_step_count=14,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # Each step talks HTTP to the sandbox: shrinking a failure would take minutes, the unshrunk steps say enough.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
