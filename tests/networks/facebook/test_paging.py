"""Facebook listeners commit page by page and resume: bursts, crashes, refused cursors lose nothing."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

import networks.facebook.adapter as facebook_module
from ground.settings import Settings
from listeners.poller import PollOutcome, poll_source
from models.store import get_cursor
from models.tables import Post, SourceCursor
from networks.base import TemporaryFailure
from networks.facebook.adapter import FacebookFeedListener, FacebookMessagesListener, make_graph
from networks.http import GRAPH_USAGE_STOP, GraphUsage, RewritingSession, graph_endpoint, graph_usage
from responder.status import collect_status
from sandbox.server import Sandbox

MAX_POLLS = 60


def graph(sb: Sandbox) -> Any:
    return make_graph(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5))


def feed(sb: Sandbox, **kwargs: Any) -> FacebookFeedListener:
    return FacebookFeedListener(graph(sb), page_id=sb.page_id, **{"page_size": 5, "max_pages": 2, **kwargs})


def messages(sb: Sandbox, **kwargs: Any) -> FacebookMessagesListener:
    return FacebookMessagesListener(graph(sb), page_id=sb.page_id, **{"page_size": 5, "max_pages": 2, **kwargs})


def stored_ids(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.execute(select(col(Post.external_id)).where(col(Post.network) == "facebook")).scalars())


def duplicates(engine: Engine) -> list[Any]:
    with Session(engine) as session:
        query = select(col(Post.external_id)).group_by(col(Post.external_id)).having(func.count() > 1)
        return list(session.execute(query).all())


def cursor_of(engine: Engine, source: str) -> SourceCursor:
    with Session(engine, expire_on_commit=False) as session:
        return get_cursor(session, network="facebook", source=source)


def poll_until_done(engine: Engine, listener: Any) -> list[PollOutcome]:
    outcomes = [poll_source(engine, listener)]
    while outcomes[-1].status != "ok" or outcomes[-1].unfinished:
        assert len(outcomes) < MAX_POLLS, f"no end to the run: {outcomes[-3:]}"
        outcomes.append(poll_source(engine, listener))
    return outcomes


def feed_burst(sb: Sandbox, n: int) -> tuple[list[str], list[str]]:
    """An old post, then ``n`` visitor posts and ``n`` comments on the old post, a second apart, all in the past."""
    base = sb.now() - timedelta(hours=1)
    old = sb.add_fb_post("Horario de verano", at=base)
    posts = [sb.add_fb_post(f"¿y mi pedido? #{i}", author=f"Cliente {i % 4}", at=base + timedelta(seconds=10 + i))
             for i in range(n)]  # fmt: skip
    comments = [sb.add_fb_comment(old, f"sigo esperando {i}", author=f"Visita {i % 3}",
                                  at=base + timedelta(seconds=10 + n + i)) for i in range(n)]  # fmt: skip
    return [old, *posts], comments


def test_feed_burst_beyond_the_page_bound_is_stored_once(engine: Engine, sandbox: Sandbox) -> None:
    start = sandbox.now() - timedelta(hours=2)
    first_post = sandbox.add_fb_post("Bienvenidos", at=start)
    listener = feed(sandbox)
    assert poll_source(engine, listener).status == "ok"
    cursor_before = cursor_of(engine, "feed").cursor
    assert cursor_before == str(int(start.timestamp()))

    posts, comments = feed_burst(sandbox, 23)  # 47 items against a bound of 2 pages × 5 per edge and poll
    outcomes = poll_until_done(engine, listener)
    assert outcomes[0].unfinished and len(outcomes) >= 3, "the burst must not fit in one poll"
    assert stored_ids(engine) == sorted([first_post, *posts, *comments])
    assert duplicates(engine) == []
    done = cursor_of(engine, "feed")
    assert done.paging == {} and int(done.cursor or 0) >= int(cursor_before or 0)

    # Afterwards the cursor picks up only what is new.
    late = sandbox.add_fb_comment(posts[-1], "¿hola?", author="Ana")
    poll_until_done(engine, listener)
    assert late in stored_ids(engine) and duplicates(engine) == []


def test_paged_run_state_is_saved_with_each_page(engine: Engine, sandbox: Sandbox) -> None:
    sandbox.add_fb_post("Bienvenidos", at=sandbox.now() - timedelta(hours=2))
    listener = feed(sandbox)
    poll_source(engine, listener)
    since = cursor_of(engine, "feed").cursor
    feed_burst(sandbox, 23)
    outcome = poll_source(engine, listener)
    state = cursor_of(engine, "feed")
    # Stopped at the bound in the feed walk: the after cursor and the run's since are saved; the cursor waits.
    assert outcome.unfinished and outcome.pages == 2 and outcome.inserted == 10
    assert state.paging["phase"] == "feed" and state.paging["after"] and str(state.paging["since"]) == since
    assert state.cursor == since and state.paging["newest"] > int(since or 0)


@pytest.mark.parametrize("how", ["server_error", "crash"])
def test_failure_mid_run_resumes_without_loss_or_doubles(engine: Engine, sandbox: Sandbox, how: str) -> None:
    sandbox.add_fb_post("Bienvenidos", at=sandbox.now() - timedelta(hours=2))
    listener = feed(sandbox, max_pages=3)
    poll_source(engine, listener)
    posts, comments = feed_burst(sandbox, 23)
    poll_source(engine, listener)  # a bounded poll, so the failure below hits a resumed run
    calls = {"n": 0}
    original = listener._get

    def failing_get(node: str, edge: str, **args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            if how == "crash":
                raise RuntimeError("the process dies here")  # not a ListenerError: like a kill mid-run
            sandbox.fail_next(status=500, path_contains=f"/{edge}")
        return original(node, edge, **args)

    listener._get = failing_get  # type: ignore[method-assign]
    before = len(stored_ids(engine))
    if how == "crash":
        with pytest.raises(RuntimeError):
            poll_source(engine, listener)
        listener = feed(sandbox, max_pages=3)  # a restarted process: a new client, only the database kept
    else:
        assert poll_source(engine, listener).status == "temporary_failure"
    assert len(stored_ids(engine)) > before, "pages before the failure stay stored"
    assert cursor_of(engine, "feed").paging, "the run's resume point is saved"
    poll_until_done(engine, listener)
    assert set(posts) | set(comments) <= set(stored_ids(engine))
    assert duplicates(engine) == []


def test_refused_after_cursor_falls_back_to_time_paging(engine: Engine, sandbox: Sandbox) -> None:
    sandbox.add_fb_post("Bienvenidos", at=sandbox.now() - timedelta(hours=2))
    listener = feed(sandbox)
    poll_source(engine, listener)
    posts, comments = feed_burst(sandbox, 23)
    poll_source(engine, listener)  # into the feed walk, stopped at the bound with an after cursor
    state = cursor_of(engine, "feed").paging
    assert state.get("phase") == "feed" and state["after"] and state["oldest"]
    # The saved cursor expired while the worker was away.
    with Session(engine) as session:
        cursor = get_cursor(session, network="facebook", source="feed")
        cursor.paging = {**state, "after": "ZXhwaXJlZA"}
        session.add(cursor)
        session.commit()
    first = next(listener.fetch_pages(None, [], cursor_of(engine, "feed").paging))
    assert first.requests_made == 2, "one refused request, one by time"
    assert first.posts and all(int(p.created_at.timestamp()) <= state["oldest"] for p in first.posts)
    outcomes = poll_until_done(engine, listener)
    assert all(o.status == "ok" for o in outcomes)
    assert set(posts) | set(comments) <= set(stored_ids(engine)) and duplicates(engine) == []


def test_messenger_burst_resumes_and_keeps_seen_ids_bounded(
    engine: Engine, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facebook_module, "SEEN_IDS_KEPT", 30)
    base = sandbox.now() - timedelta(hours=1)
    first = sandbox.add_fb_message("hola", author="Ana", at=base)
    listener = messages(sandbox)
    assert poll_source(engine, listener).status == "ok"
    burst = [
        sandbox.add_fb_message(f"mensaje {i}", author=f"Cliente {i % 3}", at=base + timedelta(seconds=5 + i))
        for i in range(36)
    ]
    # A server error in the middle of the run, on a messages page.
    sandbox.fail_next(status=500, path_contains="/t_")
    outcomes = poll_until_done(engine, listener)
    assert "temporary_failure" in [o.status for o in outcomes]
    assert any(o.unfinished for o in outcomes), "36 messages in 3 conversations exceed one poll's pages"
    assert stored_ids(engine) == sorted([first, *burst]) and duplicates(engine) == []
    state = cursor_of(engine, "messages")
    assert state.paging == {} and len(state.seen_ids) == 30
    assert burst[-1] in state.seen_ids and first not in state.seen_ids, "the oldest ids are the ones dropped"
    late = sandbox.add_fb_message("¿alguien?", author="Cliente 1")
    poll_until_done(engine, listener)
    assert late in stored_ids(engine) and duplicates(engine) == []


def test_messenger_reads_oldest_change_first_and_resumes_mid_conversation(engine: Engine, sandbox: Sandbox) -> None:
    base = sandbox.now() - timedelta(hours=1)
    sandbox.add_fb_message("hola", author="Ana", at=base)
    listener = messages(sandbox, max_pages=1)
    poll_source(engine, listener)
    luis = [sandbox.add_fb_message(f"luis {i}", author="Luis", at=base + timedelta(seconds=10 + i)) for i in range(7)]
    marta = sandbox.add_fb_message("marta", author="Marta", at=base + timedelta(seconds=60))
    # One poll: the conversations page, Ana's (nothing new), then Luis's newest 5 and the page bound.
    poll_source(engine, listener)
    state = cursor_of(engine, "messages").paging
    assert state["phase"] == "messages" and state["after"]
    assert [c["updated"] for c in state["pending"]] == sorted(c["updated"] for c in state["pending"])
    assert len(state["pending"]) == 2 and marta not in stored_ids(engine), "Luis waited longer than Marta"
    assert len(set(luis) & set(stored_ids(engine))) == 5
    poll_until_done(engine, listener)
    assert set(luis) | {marta} <= set(stored_ids(engine)) and duplicates(engine) == []


def test_graph_usage_headers_are_recorded_and_shown(engine: Engine, sandbox: Sandbox) -> None:
    sandbox.add_fb_post("hola")
    sandbox.add_fb_message("hola", author="Ana")
    poll_source(engine, feed(sandbox))
    poll_source(engine, messages(sandbox))
    with Session(engine) as session:
        report = collect_status(session)
    by_source = {s["source"]: s["rate_limits"] for s in report["sources"] if s["network"] == "facebook"}
    assert set(by_source["feed"]) == {"/{id}/feed", "/{id}/comments"}
    assert set(by_source["messages"]) == {"/{id}/conversations", "/{id}/messages"}
    quota = by_source["feed"]["/{id}/feed"]
    assert quota["header"] == "x-app-usage" and quota["limit"] == 100 and 0 < quota["used"] < GRAPH_USAGE_STOP
    assert quota["remaining"] == 100 - quota["used"]


def test_usage_at_95_percent_is_a_rate_limit(engine: Engine, sandbox: Sandbox) -> None:
    post = sandbox.add_fb_post("hola")
    comment = sandbox.add_fb_comment(post, "¿abren hoy?", author="Ana")
    listener = feed(sandbox)
    sandbox.fb_usage_override = {"call_count": 96, "total_time": 20, "total_cputime": 10}
    outcome = poll_source(engine, listener)
    # The feed page that reported 96 % is stored; the comments request waits like after a 429.
    assert outcome.status == "rate_limited" and outcome.retry_after and outcome.retry_after > 60
    assert stored_ids(engine) == [post]
    state = cursor_of(engine, "feed")
    assert state.paging["phase"] == "comments" and state.next_run_at is not None
    assert state.rate_limits["/{id}/feed"]["remaining"] == 0 and state.rate_limits["/{id}/feed"]["used"] == 96
    asked = len(sandbox.requests)
    assert poll_source(engine, listener).status == "rate_limited"
    assert len(sandbox.requests) == asked, "no request is made while the quota is used up"
    sandbox.fb_usage_override = None
    poll_until_done(engine, feed(sandbox))  # a later process, once Graph's window has moved on
    assert stored_ids(engine) == sorted([post, comment])


def test_graph_usage_parsing() -> None:
    now = time.time()
    business = '{"1234": [{"type": "pages", "call_count": 40, "total_cputime": 97, "total_time": 12, ' \
               '"estimated_time_to_regain_access": 7}]}'  # fmt: skip
    usage = graph_usage({"x-app-usage": '{"call_count": 30, "total_time": 5, "total_cputime": 2}',
                         "x-business-use-case-usage": business}, now=now)  # fmt: skip
    assert isinstance(usage, GraphUsage)
    assert (usage.used, usage.header, usage.remaining) == (97, "x-business-use-case-usage", 0)
    assert usage.reset == int(now + 7 * 60) and usage.exhausted
    assert graph_usage({"x-app-usage": "not json"}) is None and graph_usage({}) is None
    assert graph_endpoint("/v21.0/102030405060708_1015/comments") == "/{id}/comments"
    assert graph_endpoint("/v21.0/me/messages") == "/me/messages"


def test_fetch_still_merges_a_bounded_run_without_moving_the_cursor(sandbox: Sandbox) -> None:
    sandbox.add_fb_post("Bienvenidos", at=sandbox.now() - timedelta(hours=2))
    listener = feed(sandbox)
    cursor = listener.fetch(None, []).next_cursor
    feed_burst(sandbox, 23)
    result = listener.fetch(cursor, [])
    assert result.next_cursor == cursor and any("stopped after" in s for s in result.skipped)
    with pytest.raises(TemporaryFailure):
        sandbox.fail_next(status=500)
        listener.fetch(cursor, [])
