"""Bad payloads are stored or skipped with a reason, never crash the job; odd texts store on both backends."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from listeners.poller import poll_source
from models.store import MAX_TEXT, clean_json, clean_text, save_posts
from models.tables import Author, Post
from networks.base import IncomingAuthor, IncomingPost
from networks.x.adapter import XDMListener, XMentionsListener
from tests.support.replay import Replay, x_client

BRAND = "1072250532645998596"
MENTIONS = f"/2/users/{BRAND}/mentions"


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Replay()
    yield server
    server.server.shutdown()
    server.server.server_close()


def tweet(tweet_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": tweet_id, "text": text, "author_id": "42", "created_at": "2026-02-01T10:00:00.000Z", **extra}


def post(external_id: str, text: str, **extra: Any) -> IncomingPost:
    return IncomingPost(
        network="x", external_id=external_id, kind="mention", source="mentions", text=text,
        created_at=datetime(2026, 2, 1, tzinfo=UTC), raw={"id": external_id, "text": text}, **extra,
    )  # fmt: skip


def test_errors_inside_a_200_are_logged_and_the_data_kept(
    engine: Engine, replay: Replay, caplog: pytest.LogCaptureFixture
) -> None:
    replay.json(
        "GET",
        MENTIONS,
        {
            "data": [
                tweet("1600000000000000001", "@EscuchaHelp hola"),
                tweet(
                    "1600000000000000002",
                    "@EscuchaHelp contenido retenido",
                    withheld={"copyright": False, "country_codes": ["DE"]},
                ),
                tweet("1600000000000000003", "@EscuchaHelp rt", referenced_tweets=[{"type": "teleported", "id": "9"}]),
                {"id": "1600000000000000004"},  # no text: deleted under us
                "not an object",
            ],
            "includes": {"users": [{"id": "42", "username": "ana", "name": "Ana"}]},
            "errors": [
                {
                    "resource_id": "1599999999999999999",
                    "resource_type": "tweet",
                    "title": "Not Found Error",
                    "detail": "Could not find tweet with referenced_tweets.id: [1599999999999999999].",
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ],
            "meta": {"result_count": 5, "newest_id": "1600000000000000004", "oldest_id": "1600000000000000001"},
        },
    )
    listener = XMentionsListener(x_client(replay), brand_user_id=BRAND, brand_username="EscuchaHelp")
    with caplog.at_level(logging.WARNING, logger="listeners.poller"):
        outcome = poll_source(engine, listener)
    assert outcome.status == "ok" and outcome.inserted == 3
    logged = caplog.text
    assert "Could not find tweet" in logged and "1600000000000000004" in logged and "not an object" in logged
    with Session(engine) as session:
        rows = {p.external_id: p for p in session.execute(select(Post)).scalars()}
    assert rows["1600000000000000002"].raw["withheld"]["country_codes"] == ["DE"]  # type: ignore[index]
    assert rows["1600000000000000003"].kind == "mention"  # an unknown reference type changes nothing


def test_a_200_whose_data_is_not_a_list_is_skipped(replay: Replay) -> None:
    replay.json("GET", MENTIONS, {"data": {"id": "1"}, "meta": {"result_count": 1}})
    result = XMentionsListener(x_client(replay), brand_user_id=BRAND, brand_username=None).fetch(None, [])
    assert result.posts == [] and any("not a list" in s for s in result.skipped)


def test_unknown_dm_event_types_are_skipped_with_a_reason(replay: Replay) -> None:
    replay.json(
        "GET",
        "/2/dm_events",
        {
            "data": [
                {"id": "1700000000000000002", "event_type": "ParticipantsJoin", "dm_conversation_id": "1-2"},
                {
                    "id": "1700000000000000001",
                    "event_type": "MessageCreate",
                    "text": "hola",
                    "sender_id": "42",
                    "dm_conversation_id": "42-" + BRAND,
                    "created_at": "2026-02-01T10:00:00.000Z",
                },
            ],
            "meta": {"result_count": 2},
        },
    )
    result = XDMListener(x_client(replay), brand_user_id=BRAND).fetch(None, [])
    assert [p.external_id for p in result.posts] == ["1700000000000000001"]
    assert any("ParticipantsJoin" in s for s in result.skipped)


ODD = "ho\x00la\x07 \ud83d mundo\ufeff 👋🏽 e\u0301 \u202eabc\t\n"


def test_clean_text_keeps_what_people_wrote_and_drops_what_databases_refuse() -> None:
    cleaned = clean_text(ODD)
    assert "\x00" not in cleaned and "\x07" not in cleaned
    assert "\ufffd" in cleaned  # the lone surrogate, visibly replaced
    assert "👋🏽" in cleaned and "e\u0301" in cleaned and "\t\n" in cleaned
    cleaned.encode("utf-8")  # would raise on a surrogate
    assert clean_json({"k\x00": [ODD, 3, None]}) == {"k": [cleaned, 3, None]}
    assert clean_text("plain ascii") == "plain ascii"


def test_odd_unicode_huge_texts_and_oversized_ids_store_on_both_backends(session: Session) -> None:
    huge = "queja " * 20_000  # 120k characters
    author = IncomingAuthor(network="x", external_id="42", username="a\x00na", display_name="Ana \udc00")
    notes: list[str] = []
    stored = save_posts(
        session,
        [
            post("1", ODD, author=author),
            post("2", huge, lang="x" * 40, url="https://x.com/" + "a" * 2000),
            post("9" * 300, "id too long"),  # over EXTERNAL_ID_MAX (255, for Instagram's long ids)
            # Ids that fit but make a thread key longer than its column: the key becomes a digest, nothing fails.
            post("8" * 255, "long id, long thread", author=IncomingAuthor(network="x", external_id="7" * 200)),
        ],
        notes=notes,
    )
    session.commit()
    assert stored.inserted == 3
    assert any("does not fit" in n for n in notes) and any("cut to" in n for n in notes)
    rows = {p.external_id: p for p in session.execute(select(Post)).scalars()}
    assert rows["1"].text == clean_text(ODD)
    assert len(rows["2"].text) == MAX_TEXT + 1 and rows["2"].lang is None and rows["2"].url is None
    assert len(rows["2"].raw["text"]) == MAX_TEXT + 1  # type: ignore[index]
    ana = session.execute(select(Author).where(col(Author.external_id) == "42")).scalar_one()
    assert ana.username == "ana" and "\ufffd" in ana.display_name
