"""Facebook watches posts, not feed pages: comments on a post buried under newer posts are all read, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.settings import Settings
from listeners.poller import poll_source
from models.tables import Post, WatchedPost
from models.watch import load_watched
from networks.facebook.adapter import FacebookFeedListener, make_graph
from networks.http import RewritingSession
from sandbox.server import Sandbox


def feed(sb: Sandbox, **kwargs: Any) -> FacebookFeedListener:
    graph = make_graph(Settings(**sb.settings_overrides()), RewritingSession(sb.url, timeout=5))
    return FacebookFeedListener(graph, page_id=sb.page_id, clock=sb.now, **kwargs)


def stored(engine: Engine) -> dict[str, int]:
    """How many times each Facebook external id is stored."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Post.external_id), func.count())
            .where(col(Post.network) == "facebook")
            .group_by(col(Post.external_id))
        ).all()
    return {external_id: count for external_id, count in rows}


def watched_ids(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return {w.external_id for w in load_watched(session, network="facebook")}


@pytest.mark.parametrize("newer", [24, 30, 100])
def test_comments_on_a_post_buried_under_newer_posts_are_all_ingested_once(
    engine: Engine, sandbox: Sandbox, newer: int
) -> None:
    base = sandbox.now() - timedelta(hours=2)
    old = sandbox.add_fb_post("Campaña de la semana pasada", at=base)
    for i in range(newer):
        sandbox.add_fb_post(f"visita {i}", author=f"Cliente {i % 5}", at=base + timedelta(seconds=10 + i))
    listener = feed(sandbox)  # the defaults: 25 posts a page, 3 pages per poll
    assert poll_source(engine, listener).status == "ok"
    comments = [sandbox.add_fb_comment(old, f"¿sigue la oferta? {i}", author=f"Visita {i}") for i in range(10)]
    for _ in range(5):
        assert poll_source(engine, listener).status == "ok"
    counts = stored(engine)
    assert [counts.get(c, 0) for c in comments] == [1] * 10
    assert old in watched_ids(engine)


def test_a_post_backlog_does_not_hide_another_posts_comments(engine: Engine, sandbox: Sandbox) -> None:
    base = sandbox.now() - timedelta(hours=1)
    busy = sandbox.add_fb_post("Sorteo", at=base)
    quiet = sandbox.add_fb_post("Horario", at=base + timedelta(seconds=1))
    listener = feed(sandbox, page_size=5, max_pages=2)
    poll_source(engine, listener)
    backlog = [sandbox.add_fb_comment(busy, f"yo {i}", author=f"V{i}", at=base + timedelta(seconds=5 + i))
               for i in range(40)]  # fmt: skip
    other = sandbox.add_fb_comment(quiet, "¿abren el lunes?", author="Ana", at=base + timedelta(seconds=60))
    outcome = poll_source(engine, listener)
    # One poll reads 2 pages of the busy post's 40 comments, and the quiet post's comment all the same.
    assert outcome.unfinished and stored(engine).get(other) == 1
    for _ in range(10):
        if not poll_source(engine, listener).unfinished:
            break
    counts = stored(engine)
    assert [counts.get(c, 0) for c in backlog] == [1] * 40


def test_a_post_whose_window_ended_leaves_the_set_and_is_no_longer_read(engine: Engine, sandbox: Sandbox) -> None:
    post = sandbox.add_fb_post("Rebajas de enero", at=sandbox.now() - timedelta(minutes=10))
    first = sandbox.add_fb_comment(post, "¿hasta cuándo?", author="Ana")
    listener = feed(sandbox, watch_days=30)
    poll_source(engine, listener)
    assert stored(engine).get(first) == 1 and watched_ids(engine) == {post}
    sandbox.advance(29 * 86_400)
    poll_source(engine, listener)
    assert watched_ids(engine) == {post}, "29 days without activity: still inside the window"
    sandbox.advance(2 * 86_400)
    poll_source(engine, listener)
    assert watched_ids(engine) == set(), "31 days without activity: the window has ended"
    late = sandbox.add_fb_comment(post, "¿y ahora?", author="Luis")
    asked = len(sandbox.requests)
    poll_source(engine, listener)
    assert late not in stored(engine)
    assert not any(post in r for r in sandbox.requests[asked:]), "nothing asks for the post any more"


def test_a_comment_keeps_a_post_in_the_window(engine: Engine, sandbox: Sandbox) -> None:
    post = sandbox.add_fb_post("Rebajas de enero", at=sandbox.now() - timedelta(minutes=10))
    listener = feed(sandbox, watch_days=30)
    poll_source(engine, listener)
    sandbox.advance(20 * 86_400)
    sandbox.add_fb_comment(post, "¿quedan tallas?", author="Ana")
    poll_source(engine, listener)
    sandbox.advance(20 * 86_400)  # 40 days after the post, 20 after its last comment
    poll_source(engine, listener)
    late = sandbox.add_fb_comment(post, "¿y la M?", author="Luis")
    poll_source(engine, listener)
    assert stored(engine).get(late) == 1 and watched_ids(engine) == {post}


@pytest.mark.parametrize("at_call", [2, 3, 4])
def test_a_crash_between_pages_loses_nothing(engine: Engine, sandbox: Sandbox, at_call: int) -> None:
    base = sandbox.now() - timedelta(hours=2)
    old = sandbox.add_fb_post("Campaña", at=base)
    listener = feed(sandbox, page_size=5, max_pages=3)
    poll_source(engine, listener)
    posts = [sandbox.add_fb_post(f"visita {i}", author="Cliente", at=base + timedelta(seconds=10 + i))
             for i in range(12)]  # fmt: skip
    comments = [sandbox.add_fb_comment(p, f"comentario {i}", author="Ana", at=base + timedelta(seconds=40 + i))
                for i, p in enumerate([old, old, old, *posts[:3]])]  # fmt: skip
    calls = {"n": 0}
    original_get, original_objects = listener._get, listener.graph.get_objects

    def crash_on(n: int) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("the process dies here")  # not a ListenerError: like a kill mid-run

    def failing_get(node: str, edge: str, **args: Any) -> Any:
        crash_on(at_call)
        return original_get(node, edge, **args)

    def failing_objects(ids: list[str], **args: Any) -> Any:
        crash_on(at_call)
        return original_objects(ids, **args)

    listener._get = failing_get  # type: ignore[method-assign]
    listener.graph.get_objects = failing_objects
    with pytest.raises(RuntimeError):
        poll_source(engine, listener)
    with Session(engine) as session:
        rows = session.execute(select(func.count()).select_from(WatchedPost)).scalar_one()
    assert rows >= 1, "the watched posts the stored pages brought are stored with them"
    restarted = feed(sandbox, page_size=5, max_pages=3)  # a new process: only the database is kept
    for _ in range(10):
        if not poll_source(engine, restarted).unfinished:
            break
    counts = stored(engine)
    assert [counts.get(i, 0) for i in [*posts, *comments]] == [1] * (len(posts) + len(comments))
    assert watched_ids(engine) == {old, *posts}
    late = sandbox.add_fb_comment(old, "¿hola?", author="Luis")
    poll_source(engine, restarted)
    assert stored(engine).get(late) == 1


def test_feed_lists_newest_created_first_and_multi_id_reads_comments(sandbox: Sandbox) -> None:
    base = sandbox.now() - timedelta(hours=1)
    later = sandbox.add_fb_post("después", at=base + timedelta(minutes=5))
    earlier = sandbox.add_fb_post("antes", at=base)  # added second, created first: Graph sorts by created_time
    comment = sandbox.add_fb_comment(earlier, "hola", author="Ana", at=base + timedelta(minutes=6))
    graph = make_graph(Settings(**sandbox.settings_overrides()), RewritingSession(sandbox.url, timeout=5))
    listed = graph.get_connections(sandbox.page_id, "feed", fields="id,created_time")
    assert [p["id"] for p in listed["data"]] == [later, earlier]
    got = graph.get_objects([earlier, later], fields="updated_time,comments.since(0).limit(5){id,message}")
    assert set(got) == {earlier, later} and "comments" not in got[later]
    assert got[earlier]["comments"]["data"] == [{"id": comment, "message": "hola"}]
    with pytest.raises(Exception, match="do not exist"):
        graph.get_objects([earlier, f"{sandbox.page_id}_999999"], fields="id")
