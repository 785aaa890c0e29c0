"""Instagram's listeners through the real facebook-sdk ``GraphAPI`` against the sandbox's Instagram face."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.settings import Settings
from listeners.poller import PollStatus, poll_source
from models.tables import Post
from networks.base import AuthFailed, Listener, RateLimited, TemporaryFailure, merge_pages
from networks.http import RewritingSession
from networks.instagram.adapter import (
    InstagramCommentsListener,
    InstagramMentionsListener,
    InstagramMessagesListener,
    lookup_mention,
    make_graph,
)
from networks.instagram.settings import InstagramSettings
from networks.registry import build_listeners
from sandbox.server import Sandbox
from tests.support.paths import FIXTURES
from tests.support.replay import Replay

RECORDED = FIXTURES / "instagram" / "graph-api"


def _settings(sandbox: Sandbox, **extra: Any) -> Settings:
    return Settings(database_url="sqlite://", **sandbox.settings_overrides(instagram=True), **extra)


def _listener(sandbox: Sandbox, source: str, **extra: Any) -> Listener:
    (found,) = [
        x for x in build_listeners(_settings(sandbox, **extra)) if x.network == "instagram" and x.source == source
    ]
    return found


def _texts(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(select(col(Post.text)).where(col(Post.network) == "instagram")).scalars())


def _poll_until_done(engine: Engine, listener: Listener) -> int:
    polls = 0
    while True:
        outcome = poll_source(engine, listener)
        assert outcome.status == PollStatus.OK, outcome.error
        polls += 1
        if not outcome.unfinished:
            return polls


def test_the_three_sources_are_built_from_settings_and_verify(sandbox: Sandbox) -> None:
    listeners = [x for x in build_listeners(_settings(sandbox)) if x.network == "instagram"]
    assert sorted(x.source for x in listeners) == ["comments", "mentions", "messages"]
    for listener in listeners:
        listener.verify()
    off = _settings(sandbox, instagram_mentions_enabled=False)
    assert "mentions" not in [x.source for x in build_listeners(off) if x.network == "instagram"]
    # Without the Instagram settings the network is simply not configured.
    plain = Settings(database_url="sqlite://", **sandbox.settings_overrides())
    assert [x for x in build_listeners(plain) if x.network == "instagram"] == []


def test_comments_and_replies_page_by_page_and_a_new_reply_to_an_old_comment_is_read(
    engine: Engine, sandbox: Sandbox
) -> None:
    media = sandbox.add_ig_media("¡Nueva colección!")
    first = [sandbox.add_ig_comment(media, f"comentario {i}", author=f"cliente{i}") for i in range(60)]
    listener = _listener(sandbox, "comments", instagram_page_size=25, instagram_max_pages=3)
    _poll_until_done(engine, listener)
    texts = _texts(engine)
    assert {f"comentario {i}" for i in range(60)} <= set(texts)
    assert sum(1 for r in sandbox.requests if r.endswith(f"/{media}/comments")) == 3  # 25 + 25 + 10
    # Nothing changed: the batch's comment count says so, and no thread is read again.
    before = len(sandbox.requests)
    _poll_until_done(engine, listener)
    assert not [r for r in sandbox.requests[before:] if r.endswith("/comments")]
    # A reply to the oldest comment (deep on the last page of threads) is still found, threaded under it.
    reply = sandbox.add_ig_comment(first[0], "a mí tampoco me llegó", author="otra.clienta")
    _poll_until_done(engine, listener)
    with Session(engine) as session:
        row = session.execute(select(Post).where(col(Post.external_id) == reply)).scalar_one()
        parent = session.execute(select(Post).where(col(Post.external_id) == first[0])).scalar_one()
    assert row.in_reply_to_external_id == first[0] and row.parent_id == parent.id
    assert row.kind == "comment" and row.conversation_id == media and row.author_id is not None
    assert _texts(engine).count("comentario 0") == 1


def test_media_walk_pages_down_to_the_cursor(engine: Engine, sandbox: Sandbox) -> None:
    sandbox.add_ig_media("la primera")
    listener = _listener(sandbox, "comments", instagram_page_size=10, instagram_max_pages=2)
    _poll_until_done(engine, listener)
    for i in range(35):
        sandbox.add_ig_media(f"publicación {i}")
    polls = _poll_until_done(engine, listener)
    assert polls == 2  # two pages a poll: the walk resumes from its saved cursor, nothing is skipped
    texts = _texts(engine)
    assert {f"publicación {i}" for i in range(35)} <= set(texts) and texts.count("la primera") == 1


def test_a_comment_under_a_media_with_100_newer_media_is_still_read(engine: Engine, sandbox: Sandbox) -> None:
    old = sandbox.add_ig_media("la publicación de hace dos semanas", at=sandbox.now() - timedelta(days=14))
    listener = _listener(sandbox, "comments", instagram_page_size=50, instagram_max_pages=3)
    _poll_until_done(engine, listener)
    for i in range(100):
        sandbox.add_ig_media(f"novedad {i}")
    _poll_until_done(engine, listener)
    comment = sandbox.add_ig_comment(old, "@escucha.help el pedido 5521 sigue sin llegar", author="ana.g")
    start = len(sandbox.requests)
    _poll_until_done(engine, listener)
    with Session(engine) as session:
        found = session.execute(select(Post).where(col(Post.external_id) == comment)).scalar_one()
    assert found.kind == "comment" and found.conversation_id == old
    asked = sandbox.requests[start:]
    # 101 watched media cost three count requests (50 ids each), and only the changed one is read.
    assert asked.count("GET /v21.0/") == 3
    assert [r for r in asked if r.endswith("/comments")] == [f"GET /v21.0/{old}/comments"]


def test_a_media_leaves_the_watch_when_its_window_ends(engine: Engine, sandbox: Sandbox) -> None:
    media = sandbox.add_ig_media("vieja", at=sandbox.now() - timedelta(days=3))
    listener = _listener(sandbox, "comments", instagram_watch_days=2)
    _poll_until_done(engine, listener)
    assert isinstance(listener, InstagramCommentsListener) and media not in listener.watched


def test_tagged_media_and_mention_lookups(engine: Engine, sandbox: Sandbox) -> None:
    tagged = sandbox.add_ig_media("probando lo nuevo de @escucha.help", author="maria")
    listener = _listener(sandbox, "mentions")
    _poll_until_done(engine, listener)
    with Session(engine) as session:
        post = session.execute(select(Post).where(col(Post.external_id) == tagged)).scalar_one()
    assert post.kind == "mention" and post.source == "mentions" and post.is_public
    # An @mention in a comment on someone else's media is read with mentioned_comment (as the webhook says).
    theirs = sandbox.add_ig_media("mi desayuno", author="pablo", tagged=False)
    comment = sandbox.add_ig_comment(theirs, "@escucha.help ¿hacéis envíos a Canarias?", author="lucia")
    graph = make_graph(InstagramSettings.of(_settings(sandbox)), RewritingSession(sandbox.url))
    found = lookup_mention(graph, user_id=sandbox.ig_user_id, username=sandbox.ig_username, media_id=theirs,
                           comment_id=comment)  # fmt: skip
    assert found.external_id == f"{theirs}_{comment}" and found.text.startswith("@escucha.help")
    assert found.author is not None and found.author.username == "lucia"
    with pytest.raises(TemporaryFailure):  # a comment that does not mention the account is refused
        lookup_mention(graph, user_id=sandbox.ig_user_id, username="", media_id=theirs,
                       comment_id=sandbox.add_ig_comment(theirs, "qué rico", author="x"))  # fmt: skip


def test_dms_are_read_once_and_the_cursor_moves(engine: Engine, sandbox: Sandbox) -> None:
    first = sandbox.add_ig_message("hola, mi pedido no llega", author="cliente.ig")
    assert len(first) > 128  # Instagram's message ids are long; the store takes up to 255 characters
    listener = _listener(sandbox, "messages")
    assert isinstance(listener, InstagramMessagesListener)
    result = listener.fetch(None, [])
    assert [p.external_id for p in result.posts] == [first]
    stored = poll_source(engine, listener)
    assert stored.status == PollStatus.OK and stored.inserted == 1  # fits the column on SQLite and PostgreSQL
    dm = result.posts[0]
    assert dm.kind == "dm" and not dm.is_public and dm.author is not None
    assert dm.author.external_id == sandbox.ig_user_id_of("cliente.ig")
    second = sandbox.add_ig_message("¿me decís algo?", author="cliente.ig")
    again = listener.fetch(result.next_cursor, result.seen_ids or [])
    assert [p.external_id for p in again.posts] == [second]


def test_usage_headers_stop_a_source_before_instagram_does(sandbox: Sandbox) -> None:
    sandbox.add_ig_media("algo")
    listener = _listener(sandbox, "comments")
    assert isinstance(listener, InstagramCommentsListener)
    merge_pages(listener.fetch_pages(None, [], {}), None)
    quota = listener.quota()
    assert quota["/{id}/media"].remaining == 99  # type: ignore[union-attr]
    sandbox.ig_usage_override = {"call_count": 96, "total_time": 10, "total_cputime": 10}
    asked = len(sandbox.requests)
    with pytest.raises(RateLimited):  # the first answer that says 96 % stops the run before its next request
        for _ in range(2):
            merge_pages(listener.fetch_pages(None, [], {}), None)
    assert len(sandbox.requests) - asked == 1


@pytest.mark.parametrize(("status", "error"), [(500, TemporaryFailure), (429, RateLimited), (401, AuthFailed)])
def test_faults_become_the_listener_errors(sandbox: Sandbox, status: int, error: type[Exception]) -> None:
    sandbox.add_ig_message("hola", author="alguien")
    listener = _listener(sandbox, "messages")
    sandbox.fail_next(1, status=status, path_contains="/conversations")
    with pytest.raises(error):
        listener.fetch(None, [])
    sandbox.malformed_next(1, path_contains="/conversations")
    with pytest.raises(TemporaryFailure):
        listener.fetch(None, [])
    assert len(listener.fetch(None, []).posts) == 1


# ---------------------------------------------------------------- recordings (python-facebook, Apache-2.0)
def _recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


@pytest.fixture
def replay() -> Any:
    server = Replay()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _graph(url: str) -> Any:
    ig = InstagramSettings(user_id="17841406338772941", page_id="1", token="recorded-token")
    return make_graph(ig, RewritingSession(url))


def test_recorded_media_and_comments_replay_into_the_listener(replay: Replay) -> None:
    medias, comments = _recorded("users/medias_p1.json"), _recorded("medias/comments_p1.json")
    media_id = medias["data"][1]["id"]
    replay.json("GET", "/v21.0/17841406338772941/media", {"data": medias["data"]})
    replay.json("GET", "/v21.0/", {m["id"]: {"id": m["id"], "comments_count": m["comments_count"]}
                                   for m in medias["data"]})  # fmt: skip
    replay.json("GET", f"/v21.0/{media_id}/comments", {"data": comments["data"]})
    listener = InstagramCommentsListener(_graph(replay.url), user_id="17841406338772941",
                                         clock=lambda: datetime(2021, 8, 14, tzinfo=UTC))  # fmt: skip
    result = listener.fetch(None, [])
    assert [p.external_id for p in result.posts if p.kind == "page_post"] == [m["id"] for m in medias["data"]]
    read = [p for p in result.posts if p.kind == "comment"]
    # Recorded newest first and without an author: the texts and ids come through, nothing is made up.
    assert [(p.external_id, p.text) for p in read] == [(c["id"], c["text"]) for c in comments["data"]]
    assert all(p.author is None and p.conversation_id == media_id for p in read)
    assert f"GET /v21.0/{medias['data'][0]['id']}/comments" not in replay.seen  # comments_count 0: not read


def test_recorded_tags_and_mention_lookups_replay(replay: Replay) -> None:
    tagged = _recorded("users/tagged_medias.json")
    replay.json("GET", "/v21.0/17841406338772941/tags", tagged)
    listener = InstagramMentionsListener(_graph(replay.url), user_id="17841406338772941")
    result = listener.fetch(None, [])
    assert [p.text for p in result.posts] == [m.get("caption", "") for m in tagged["data"]]
    replay.json("GET", "/v21.0/17841406338772941", _recorded("users/mentioned_comment.json"))
    post = lookup_mention(_graph(replay.url), user_id="17841406338772941", username="", media_id="17889114512354744",
                          comment_id="17967008497439572")  # fmt: skip
    assert post.text == "@ikroskun good" and post.author is not None and post.author.username == "ikroskun"


@pytest.mark.parametrize(
    ("recording", "route", "add"),
    [
        ("users/medias_p1.json", "media", lambda sb: sb.add_ig_media("x")),
        ("medias/comments_p1.json", "comments", lambda sb: sb.add_ig_comment(sb.add_ig_media("x"), "y")),
        ("users/tagged_medias.json", "tags", lambda sb: sb.add_ig_media("x @escucha.help", author="z")),
    ],
)
def test_the_sandbox_speaks_the_recorded_field_names(sandbox: Sandbox, recording: str, route: str, add: Any) -> None:
    recorded = _recorded(recording)
    wanted = sorted({k for item in recorded["data"] for k in item} - {"media_url"})
    add(sandbox)
    node = sandbox.ig_media_ids()[-1] if route == "comments" else sandbox.ig_user_id
    graph = make_graph(InstagramSettings.of(_settings(sandbox)), RewritingSession(sandbox.url))
    answer = graph.get_connections(node, route, fields=",".join(wanted))
    assert set(answer["data"][0]) == set(wanted)
    assert set(recorded.get("paging", {}).get("cursors", {})) <= {"before", "after"}
    # Shapes, not only names: times in Graph's format, ids as strings of digits.
    item = answer["data"][0]
    assert item["id"].isdigit() and item["timestamp"].endswith("+0000")


def test_recordings_are_kept_with_their_licence() -> None:
    assert "Apache License" in (RECORDED / "LICENSE").read_text()
    assert "sns-sdks/python-facebook" in Path(RECORDED / "NOTICE.md").read_text()
