"""Instagram's webhook fields through the one receiver (real uvicorn on loopback) with Meta's signature check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ground.settings import Settings
from models.tables import Post
from networks.base import WebhookRefused
from networks.instagram.webhook import parse_delivery
from sandbox.server import Sandbox
from sandbox.webhooks import WebhookPusher
from webhooks.receiver import Receiver
from webhooks.server import running

APP_SECRET = "ig-app-secret-for-the-webhook-tests"
VERIFY = "ig-verify-token-for-the-webhook-tests"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(fb_app_secret=APP_SECRET) as sandbox:
        yield sandbox


@pytest.fixture
def url(sb: Sandbox, engine: Engine, db_url: str) -> Iterator[str]:
    settings = Settings(database_url=db_url, instagram_verify_token=VERIFY, **sb.settings_overrides(instagram=True))
    with running(Receiver(settings, engine)) as base:
        yield base


def _push(url: str) -> WebhookPusher:
    # Meta signs Instagram deliveries as it signs the Page's: X-Hub-Signature-256 with the app secret.
    return WebhookPusher(url, x_consumer_secret="unused", fb_app_secret=APP_SECRET, attempts_per_delivery=1)


def _stored(engine: Engine) -> dict[str, Post]:
    with Session(engine) as session:
        rows = session.execute(select(Post).where(col(Post.network) == "instagram")).scalars()
        return {p.external_id: p for p in rows}


def test_handshake_echoes_the_challenge_only_for_our_verify_token(url: str) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "8765"}
    ok = requests.get(f"{url}/webhooks/instagram", params=params, timeout=10)
    assert (ok.status_code, ok.text) == (200, "8765")
    wrong = requests.get(f"{url}/webhooks/instagram", params={**params, "hub.verify_token": "no"}, timeout=10)
    assert wrong.status_code == 403 and "8765" not in wrong.text


def test_comments_mentions_and_dms_are_stored_once(sb: Sandbox, url: str, engine: Engine) -> None:
    media = sb.add_ig_media("Nueva colección")
    comment = sb.add_ig_comment(media, "mi pedido no llega", author="ana.g")
    reply = sb.add_ig_comment(comment, "a mí tampoco", author="luis")
    tagged = sb.add_ig_media("con mis zapatillas de @escucha.help", author="maria")
    theirs = sb.add_ig_media("desayuno", author="pablo", tagged=False)
    in_comment = sb.add_ig_comment(theirs, "@escucha.help ¿abrís el domingo?", author="lucia")
    dm = sb.add_ig_message("hola, ¿me ayudáis con un cambio?", author="cliente.ig")
    push = _push(url)
    delivery = sb.ig_delivery((comment, reply, tagged, in_comment, dm))
    assert push.push("instagram", delivery) == 200
    stored = _stored(engine)
    assert stored[comment].kind == "comment" and stored[comment].conversation_id == media
    assert stored[reply].in_reply_to_external_id == comment
    assert stored[tagged].kind == "mention" and stored[tagged].text.startswith("con mis zapatillas")
    assert stored[f"{theirs}_{in_comment}"].text == "@escucha.help ¿abrís el domingo?"
    assert stored[dm].kind == "dm" and not stored[dm].is_public
    # The same delivery again is the network's retry: already stored, nothing twice.
    body, headers = push.body_and_headers("instagram", delivery)
    assert push.post("instagram", body, headers) == 409
    assert len(_stored(engine)) == 5


def test_signatures_are_checked_as_for_the_page(sb: Sandbox, url: str, engine: Engine) -> None:
    media = sb.add_ig_media("x")
    delivery = sb.ig_delivery((sb.add_ig_comment(media, "hola", author="a"),))
    push = _push(url)
    body, headers = push.body_and_headers("instagram", delivery)
    assert push.post("instagram", body, {"Content-Type": "application/json"}) == 401
    assert push.post("instagram", body + b" ", headers) == 403
    other = WebhookPusher(url, x_consumer_secret="x", fb_app_secret="someone-elses-secret", attempts_per_delivery=1)
    assert other.push("instagram", delivery) == 403
    assert _stored(engine) == {}


def test_a_mention_that_cannot_be_read_is_redelivered_not_lost(sb: Sandbox, url: str, engine: Engine) -> None:
    tagged = sb.add_ig_media("@escucha.help gracias!", author="maria")
    delivery = sb.ig_delivery((tagged,))
    sb.fail_next(1, status=500, path_contains=f"/{sb.ig_user_id}")
    push = _push(url)
    body, headers = push.body_and_headers("instagram", delivery)
    assert push.post("instagram", body, headers) == 503
    assert _stored(engine) == {}
    assert push.post("instagram", body, headers) == 200  # Instagram retries; now the lookup answers
    assert list(_stored(engine)) == [tagged]


def test_a_delivery_for_another_account_is_refused(sb: Sandbox, url: str) -> None:
    delivery: dict[str, Any] = {"object": "instagram", "entry": [{"id": "17841499999999999", "time": 1, "changes": []}]}
    assert _push(url).push("instagram", delivery) == 422
    with pytest.raises(WebhookRefused):
        parse_delivery({"object": "page", "entry": []}, user_id="1", lookup=None)
