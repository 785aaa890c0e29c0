"""Paged fetches commit page by page and resume: a page bound or a crash never skips posts (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.settings import Settings
from listeners.poller import poll_source
from models.store import get_cursor
from models.tables import Post, SourceCursor
from networks.base import FetchResult, TemporaryFailure
from networks.http import RewritingSession
from networks.x.adapter import XDMListener, XMentionsListener, make_x_client
from sandbox.server import Sandbox


def x_client(sb: Sandbox) -> Any:
    return make_x_client(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5))


def mentions(sb: Sandbox, **kwargs: Any) -> XMentionsListener:
    return XMentionsListener(x_client(sb), brand_user_id=sb.brand_user_id, brand_username=sb.brand_username, **kwargs)


def stored_ids(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.execute(select(Post.external_id)).scalars())


def cursor_of(engine: Engine, source: str) -> SourceCursor:
    with Session(engine, expire_on_commit=False) as session:
        return get_cursor(session, network="x", source=source)


def test_page_bound_resumes_next_poll_without_a_gap(engine: Engine, sandbox: Sandbox) -> None:
    ids = [sandbox.add_mention(f"queja {i}") for i in range(47)]
    listener = mentions(sandbox, page_size=5, max_pages=3)
    first = poll_source(engine, listener)
    assert (first.status, first.inserted, first.pages, first.unfinished) == ("ok", 15, 3, True)
    state = cursor_of(engine, "mentions")
    assert state.cursor is None and state.paging["newest"] == ids[-1] and state.paging["token"]
    newer = sandbox.add_mention("llegó mientras tanto")
    outcomes = [poll_source(engine, listener) for _ in range(3)]
    assert [o.unfinished for o in outcomes] == [True, True, False]
    assert stored_ids(engine) == sorted(ids)
    # Only when the run is done does the cursor adopt the newest id of its first page.
    done = cursor_of(engine, "mentions")
    assert done.cursor == ids[-1] and done.paging == {}
    poll_source(engine, listener)
    assert stored_ids(engine) == sorted([*ids, newer])
    assert cursor_of(engine, "mentions").cursor == newer


def test_failure_mid_run_keeps_committed_pages_and_resumes(engine: Engine, sandbox: Sandbox) -> None:
    ids = [sandbox.add_mention(f"m{i}") for i in range(30)]
    listener = mentions(sandbox, page_size=5, max_pages=10)
    pages = {"n": 0}
    original = listener._call

    def third_page_fails(**params: Any) -> Any:
        pages["n"] += 1
        if pages["n"] == 3:
            sandbox.fail_next(status=503, path_contains="/mentions")
        return original(**params)

    listener._call = third_page_fails  # type: ignore[method-assign]
    outcome = poll_source(engine, listener)
    assert outcome.status == "temporary_failure" and outcome.inserted == 10
    assert len(stored_ids(engine)) == 10 and cursor_of(engine, "mentions").paging["token"]
    assert poll_source(engine, listener).status == "ok"
    assert stored_ids(engine) == sorted(ids)
    with Session(engine) as session:
        dupes = session.execute(select(Post.external_id).group_by(col(Post.external_id)).having(func.count() > 1)).all()
    assert dupes == []


def test_expired_page_token_falls_back_to_until_id(sandbox: Sandbox) -> None:
    ids = [sandbox.add_mention(f"m{i}") for i in range(12)]
    listener = mentions(sandbox, page_size=5)
    first = next(listener.fetch_pages(None, [], {}))
    assert first.paging is not None
    sandbox.fail_next(status=400, path_contains="/mentions")  # the saved token is refused once
    rest = list(listener.fetch_pages(None, [], first.paging))
    got = [p.external_id for r in [first, *rest] for p in r.posts]
    assert sorted(got) == sorted(ids) and rest[-1].next_cursor == ids[-1]


def test_dm_pages_resume_instead_of_stopping_at_ids_seen_in_the_same_run(engine: Engine, sandbox: Sandbox) -> None:
    ids = [sandbox.add_dm(f"dm {i}", author="carla") for i in range(9)]
    listener = XDMListener(x_client(sandbox), brand_user_id=sandbox.brand_user_id, page_size=2, max_pages=2)
    while poll_source(engine, listener).unfinished:
        pass
    assert stored_ids(engine) == sorted(ids)
    state = cursor_of(engine, "dms")
    assert state.paging == {} and state.seen_ids[-1] == ids[-1]
    newer = sandbox.add_dm("otra", author="carla")
    poll_source(engine, listener)
    assert stored_ids(engine) == sorted([*ids, newer])


def test_poller_commits_each_page_with_its_cursor_state(engine: Engine) -> None:
    class TwoPages:
        network, source = "x", "mentions"

        def verify(self) -> None: ...

        def fetch(self, cursor: str | None, seen_ids: list[str]) -> FetchResult:
            raise AssertionError("the poller uses fetch_pages")

        def fetch_pages(self, cursor: str | None, seen_ids: list[str], paging: dict[str, Any]) -> Iterator[FetchResult]:
            yield FetchResult([], next_cursor=None, paging={"token": "t1"}, items_read=3)
            raise TemporaryFailure("network went away")

    outcome = poll_source(engine, TwoPages())
    assert outcome.status == "temporary_failure"
    state = cursor_of(engine, "mentions")
    assert state.paging == {"token": "t1"} and state.month_posts_read == 3 and state.month_requests == 1
