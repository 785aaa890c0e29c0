"""The desk and a network's reply rules (Instagram here): a DM past its window, a private reply to a comment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from ground.settings import Settings
from models.tables import Post, Reply, ReplyState, Staff
from networks.registry import build_listeners, build_senders
from review_app import context
from review_app.i18n import t
from review_app.views.reply_window import private_key
from sandbox.server import Sandbox
from tests.support.desk import approve, desk_engine, open_app, reply_row
from tests.support.factories import staff
from worker.scheduler import Worker


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    yield from desk_engine(tmp_path, monkeypatch)


def _settings(sandbox: Sandbox) -> Settings:
    return Settings(database_url="sqlite://", **sandbox.settings_overrides(instagram=True))


def _ingest(engine: Engine, sandbox: Sandbox) -> Staff:
    listeners = [x for x in build_listeners(_settings(sandbox)) if x.network == "instagram"]
    with Session(engine, expire_on_commit=False) as session:
        manager = staff(session, "Mara Manager", role="manager", senior=True, languages="es,en")
    Worker(engine, listeners=listeners, senders={}, scorer=LexiconScorer()).run_once()
    return manager


def _reply_of(engine: Engine, external_id: str) -> tuple[int, int]:
    with Session(engine) as session:
        post = session.execute(select(Post).where(col(Post.external_id) == external_id)).scalar_one()
        reply = session.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalars().first()
        assert reply is not None and post.id is not None and reply.id is not None
        return post.id, reply.id


def _link_urls(at: Any) -> list[str]:
    return [el.proto.url for el in at.get("link_button")]


def test_a_dm_past_its_window_says_why_and_offers_the_public_post(app_engine: Engine, sandbox: Sandbox) -> None:
    media = sandbox.add_ig_media("Nueva tienda")
    dm = sandbox.add_ig_message("¿dónde está mi pedido?", author="cliente.ig", at=sandbox.now() - timedelta(hours=30))
    comment = sandbox.add_ig_comment(media, "os escribí por privado y nada", author="cliente.ig")
    manager = _ingest(app_engine, sandbox)
    _dm_post, dm_reply = _reply_of(app_engine, dm)
    comment_post, comment_reply = _reply_of(app_engine, comment)
    for lang, words in (("es", "solo deja contestar en las 24 h"), ("en", "only allows a reply within 24 h")):
        at = open_app(manager, lang=lang)
        assert any(words in w.value for w in at.warning), [w.value for w in at.warning]
        keys = [b.key for b in at.button]
        # No button that could only fail: the DM's approve and submit are gone, the comment's are there.
        assert f"approve_{dm_reply}" not in keys and f"submit_{dm_reply}" not in keys
        assert f"approve_{comment_reply}" in keys
        assert f"?post={comment_post}" in _link_urls(at)
        labels = [el.proto.label for el in at.get("link_button")]
        assert t(lang, "window_public") in labels


def test_a_comment_is_answered_privately_once_from_the_desk(
    app_engine: Engine, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = sandbox.add_ig_media("Rebajas de invierno")
    comment = sandbox.add_ig_comment(media, "Me cobrasteis dos veces el pedido 5521", author="ana.g")
    manager = _ingest(app_engine, sandbox)
    monkeypatch.setattr(context, "build_senders", lambda settings: build_senders(_settings(sandbox)))
    _post, rid = _reply_of(app_engine, comment)
    at = open_app(manager)
    at.checkbox(key=private_key(rid)).check().run()
    approve(at, rid)
    assert not at.exception and [s.value for s in at.success]
    row = reply_row(app_engine, rid)
    assert row.state == ReplyState.SENT and row.private
    assert [(r.kind, r.in_reply_to) for r in sandbox.sent] == [("private_reply", comment)]


def test_an_old_comment_offers_no_private_reply_and_says_why(app_engine: Engine, sandbox: Sandbox) -> None:
    media = sandbox.add_ig_media("Colección de verano")
    old = sandbox.add_ig_comment(media, "nunca me devolvieron el dinero", author="ana.g",
                                 at=sandbox.now() - timedelta(days=9))  # fmt: skip
    manager = _ingest(app_engine, sandbox)
    _post, rid = _reply_of(app_engine, old)
    at = open_app(manager, lang="es")
    assert private_key(rid) not in [c.key for c in at.checkbox]
    assert t("es", "private_closed_window", days=7) in [c.value for c in at.caption]
