"""The webhook receiver on a real uvicorn over loopback, fed by the sandbox's signed deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from ground.clock import aware
from ground.db import make_engine
from ground.settings import Settings
from listeners.poller import poll_source
from models.tables import Post, WebhookDelivery
from networks.registry import build_listeners
from sandbox.server import Sandbox
from sandbox.webhooks import WebhookPusher
from tests.support.db import PG_URL, pg_schema_url
from tests.support.tcp_proxy import TcpProxy
from webhooks.receiver import Receiver
from webhooks.server import running

FB_SECRET = "fb-app-secret-for-the-webhook-tests"
X_SECRET = "sandbox-consumer-secret"  # what Sandbox.settings_overrides gives X
VERIFY = "verify-token-for-the-webhook-tests"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(fb_app_secret=FB_SECRET) as sandbox:
        yield sandbox


def make_settings(sb: Sandbox, url: str, **extra: Any) -> Settings:
    return Settings(database_url=url, facebook_verify_token=VERIFY, **sb.settings_overrides(), **extra)


@pytest.fixture
def receiver(sb: Sandbox, engine: Engine, db_url: str) -> Receiver:
    return Receiver(make_settings(sb, db_url), engine)


@pytest.fixture
def url(receiver: Receiver) -> Iterator[str]:
    with running(receiver) as base:
        yield base


def pusher(url: str, **kwargs: Any) -> WebhookPusher:
    return WebhookPusher(url, x_consumer_secret=X_SECRET, fb_app_secret=FB_SECRET, **kwargs)


def rows(engine: Engine, external_id: str) -> int:
    with Session(engine) as s:
        query = select(func.count()).select_from(Post).where(col(Post.external_id) == external_id)
        return s.execute(query).scalar_one()


def total_posts(engine: Engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(Post)).scalar_one()


# ----------------------------------------------------------------- handshakes
def test_facebook_handshake_echoes_the_challenge_only_for_our_verify_token(url: str) -> None:
    ok = requests.get(
        f"{url}/webhooks/facebook",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"},
        timeout=10,
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    wrong = requests.get(
        f"{url}/webhooks/facebook",
        params={"hub.mode": "subscribe", "hub.verify_token": "not-ours", "hub.challenge": "1158201444"},
        timeout=10,
    )
    assert wrong.status_code == 403 and "1158201444" not in wrong.text
    params = {"hub.verify_token": VERIFY, "hub.challenge": "1"}
    no_mode = requests.get(f"{url}/webhooks/facebook", params=params, timeout=10)
    assert no_mode.status_code == 403


def test_x_crc_answers_the_base64_hmac_of_the_token(url: str) -> None:
    answer = requests.get(f"{url}/webhooks/x", params={"crc_token": "Zm9vYmFy"}, timeout=10)
    expected = base64.b64encode(hmac.new(X_SECRET.encode(), b"Zm9vYmFy", hashlib.sha256).digest()).decode()
    assert answer.status_code == 200
    assert answer.json() == {"response_token": f"sha256={expected}"}
    assert requests.get(f"{url}/webhooks/x", timeout=10).status_code == 400


# ----------------------------------------------------------------- signatures and replays
def test_unsigned_and_wrongly_signed_deliveries_are_refused_and_store_nothing(
    sb: Sandbox, url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    tid = sb.add_mention("¿dónde está mi pedido?")
    pid = sb.add_fb_post("hola", author="Visitante")
    good = pusher(url)
    x_body, x_headers = good.body_and_headers("x", sb.x_activity(tweet_ids=(tid,)))
    fb_body, fb_headers = good.body_and_headers("facebook", sb.fb_page_delivery((pid,)))

    unsigned = {"Content-Type": "application/json"}
    assert good.post("x", x_body, unsigned) == 401
    assert good.post("facebook", fb_body, unsigned) == 401
    wrong_secret = pusher(url)
    wrong_secret.x_consumer_secret = wrong_secret.fb_app_secret = "someone-elses-secret"
    assert wrong_secret.post("x", *wrong_secret.body_and_headers("x", sb.x_activity(tweet_ids=(tid,)))) == 403
    assert wrong_secret.post("facebook", *wrong_secret.body_and_headers("facebook", sb.fb_page_delivery((pid,)))) == 403
    # The right signature over other bytes: the body was changed on the way.
    assert good.post("x", x_body.replace(b"pedido", b"pedidx"), x_headers) == 403
    assert good.post("facebook", fb_body + b" ", fb_headers) == 403

    assert total_posts(engine) == 0
    text = caplog.text
    assert "wrong x-hub-signature-256" in text and "unsigned" in text
    for secret in (X_SECRET, FB_SECRET, x_headers["x-twitter-webhooks-signature"], fb_headers["X-Hub-Signature-256"]):
        assert secret not in text


def test_a_replayed_delivery_is_refused_and_stays_one_row(sb: Sandbox, url: str, engine: Engine) -> None:
    tid = sb.add_mention("no me llega la factura")
    push = pusher(url)
    body, headers = push.body_and_headers("x", sb.x_activity(tweet_ids=(tid,)))
    assert push.post("x", body, headers) == 200
    assert push.post("x", body, headers) == 409  # same bytes, same signature: already stored
    assert rows(engine, tid) == 1
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 1


def test_a_delivery_older_than_the_replay_window_is_refused(sb: Sandbox, url: str, engine: Engine) -> None:
    old = sb.add_mention("de hace tres días", at=sb.now() - timedelta(days=3))
    future = sb.add_fb_post("del futuro", author="Viajero", at=sb.now() + timedelta(hours=1))
    push = pusher(url)
    assert push.push("x", sb.x_activity(tweet_ids=(old,))) == 403
    assert push.push("facebook", sb.fb_page_delivery((future,))) == 403
    assert total_posts(engine) == 0


# ----------------------------------------------------------------- exactly once
def test_duplicates_out_of_order_and_a_poll_of_the_same_posts_give_one_row_each(
    sb: Sandbox, url: str, engine: Engine, db_url: str
) -> None:
    mention = sb.add_mention("mi pedido no llegó", author="ana_x")
    dm = sb.add_dm("necesito ayuda con mi cuenta", author="beto_dm")
    post = sb.add_fb_post("¿abren el domingo?", author="Carla")
    comment = sb.add_fb_comment(post, "yo también quiero saber", author="Dani")
    reply = sb.add_fb_comment(comment, "y yo", author="Eva")
    message = sb.add_fb_message("hola, tengo un problema", author="Fede")
    ids = [mention, dm, post, comment, reply, message]
    push = pusher(url, duplicate_rate=1.0, seed=3)
    statuses = push.push_all(
        [
            ("x", sb.x_activity(tweet_ids=(mention,))),
            ("x", sb.x_activity(dm_ids=(dm,))),
            ("facebook", sb.fb_page_delivery((reply, comment, post))),
            ("facebook", sb.fb_page_delivery((message,))),
        ],
        shuffle=True,
    )
    assert statuses == [200, 200, 200, 200]
    assert sorted(a.status for a in push.attempts) == [200] * 4 + [409] * 4  # every delivery came twice
    assert [rows(engine, i) for i in ids] == [1] * len(ids)
    with Session(engine) as s:
        stored = {p.external_id: p for p in s.execute(select(Post)).scalars()}
        replied = stored[reply]
        assert replied.in_reply_to_external_id == comment and replied.parent_id == stored[comment].id
        assert stored[dm].kind == "dm" and not stored[dm].is_public
        assert stored[mention].kind == "mention" and stored[message].kind == "dm"

    # Polling stays the safety net: it reads the same posts and stores none of them again.
    for listener in build_listeners(make_settings(sb, db_url)):
        poll_source(engine, listener)
    assert [rows(engine, i) for i in ids] == [1] * len(ids)
    assert total_posts(engine) == len(ids)


def test_a_poll_first_then_the_delivery_gives_one_row(sb: Sandbox, url: str, engine: Engine, db_url: str) -> None:
    mention = sb.add_mention("primero por sondeo")
    for listener in build_listeners(make_settings(sb, db_url)):
        poll_source(engine, listener)
    assert rows(engine, mention) == 1
    assert pusher(url).push("x", sb.x_activity(tweet_ids=(mention,))) == 200
    assert rows(engine, mention) == 1


# ----------------------------------------------------------------- database outage
@pytest.mark.postgres
def test_database_down_during_a_delivery_answers_503_and_the_redelivery_stores_one_row(sb: Sandbox) -> None:
    with pg_schema_url() as schema_url:
        base = make_engine(schema_url)
        SQLModel.metadata.create_all(base)
        base.dispose()
        proxy = TcpProxy(("127.0.0.1", 5432))
        assert PG_URL.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/")
        engine = make_engine(schema_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
        receiver = Receiver(make_settings(sb, schema_url), engine)
        with running(receiver) as base_url:
            first = sb.add_mention("antes del corte")
            assert pusher(base_url).push("x", sb.x_activity(tweet_ids=(first,))) == 200
            proxy.down()
            tid = sb.add_mention("durante el corte")
            push = pusher(base_url, attempts_per_delivery=40, backoff_s=0.02)
            result: list[int] = []
            worker = threading.Thread(target=lambda: result.append(push.push("x", sb.x_activity(tweet_ids=(tid,)))))
            worker.start()
            deadline = time.monotonic() + 30
            while not any(a.status == 503 for a in push.attempts):
                assert time.monotonic() < deadline, f"no 503 while the database was down: {push.attempts}"
                time.sleep(0.01)
            proxy.up()
            worker.join(timeout=120)
            assert result == [200]
            assert [a.status for a in push.attempts][-1] == 200
            assert rows(engine, tid) == 1 and rows(engine, first) == 1
            assert receiver.counts.unavailable >= 1
        engine.dispose()
        proxy.down()


# ----------------------------------------------------------------- bad input
def test_oversized_and_malformed_bodies_get_4xx(sb: Sandbox, engine: Engine, db_url: str) -> None:
    receiver = Receiver(make_settings(sb, db_url, webhooks_max_body_bytes=2048), engine)
    with running(receiver) as base:
        push = pusher(base)
        big = b'{"object":"page","entry":[' + b" " * 4096 + b"]}"
        assert push.post("facebook", big, {"X-Hub-Signature-256": "sha256=00"}) == 413
        for body in (b"{not json", b'{"object": NaN}', b"[" * 2000, b"\xff\xfe"):
            assert push.post("facebook", body, {"X-Hub-Signature-256": f"sha256={_fb_sig(body)}"}) == 400
        wrong_page = {"object": "page", "entry": [{"id": "999", "time": int(time.time()), "changes": []}]}
        assert push.push("facebook", wrong_page) == 422
        assert push.push("x", {"for_user_id": "1", "tweet_create_events": []}) == 422
    assert total_posts(engine) == 0


def test_an_abusive_address_is_rate_limited(sb: Sandbox, engine: Engine, db_url: str) -> None:
    receiver = Receiver(make_settings(sb, db_url, webhooks_rate_per_minute=5), engine)
    with running(receiver) as base:
        codes = [requests.get(f"{base}/webhooks/x?crc_token=t", timeout=10).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5
    assert codes[5:] == [429, 429]


def _fb_sig(body: bytes) -> str:
    return hmac.new(FB_SECRET.encode(), body, hashlib.sha256).hexdigest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
fb_shaped = st.fixed_dictionaries(
    {"object": st.sampled_from(["page", "user", 1]), "entry": st.lists(json_values, max_size=3) | json_values}
)
x_shaped = st.fixed_dictionaries(
    {
        "for_user_id": st.sampled_from(["1072250532645998596", 5, None]),
        "tweet_create_events": st.lists(json_values, max_size=3) | json_values,
        "direct_message_events": st.lists(json_values, max_size=3),
        "users": json_values,
    }
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_json_in_another_encoding_than_utf8_is_malformed(sb: Sandbox, url: str, engine: Engine) -> None:
    """Python reads b"\\x000" as UTF-16 for the number 0; the networks send UTF-8 only, so it is malformed (400)."""
    push = pusher(url)
    for body in (b"\x000", '{"object": "page", "entry": []}'.encode("utf-16")):
        assert push.post("facebook", body, {"X-Hub-Signature-256": f"sha256={_fb_sig(body)}"}) == 400


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_fuzzed_signed_payloads_never_get_a_5xx(sb: Sandbox, url: str, engine: Engine) -> None:
    push = pusher(url)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(network=st.sampled_from(["x", "facebook"]), payload=json_values | fb_shaped | x_shaped, raw=st.binary())
    def check(network: str, payload: Any, raw: bytes) -> None:
        body, headers = push.body_and_headers(network, payload)
        status = push.post(network, body, headers)
        assert 200 <= status < 500 and status != 404, (status, payload)
        if not isinstance(payload, dict):
            assert 400 <= status < 500
        # Arbitrary bytes, signed: malformed JSON or a refused envelope, always a 4xx.
        junk = b"\x00" + raw
        signed = {"X-Hub-Signature-256": f"sha256={_fb_sig(junk)}"}
        assert push.post("facebook", junk, signed) == 400

    check()


# ----------------------------------------------------------------- the sandbox pushing on its own
def test_the_sandbox_pushes_each_new_post_once_with_duplicates_and_reordering_and_one_row_each(
    sb: Sandbox, url: str, receiver: Receiver, engine: Engine
) -> None:
    sb.push_webhooks(url, senders=3, duplicate_rate=0.3, reorder_rate=0.4, seed=5)

    def item(route: str, **args: str) -> dict[str, Any]:
        return {"route": route, "args": args}

    # Items come through the admin routes (``add_many``), as the bench's customers do; each is announced.
    (page_post,) = sb.add_many([item("add_fb_post", text="Nueva colección", author="Visitante")])

    items = [item("add_mention", text=f"mi pedido {i} no llega", author=f"cli{i}") for i in range(12)]
    items += [item("add_dm", text=f"ayuda con la cuenta {i}", author=f"dm{i}") for i in range(6)]
    items += [item("add_fb_comment", post_id=page_post, text=f"¿y el envío {i}?") for i in range(6)]
    items += [item("add_fb_message", text="hola, tengo un problema", author="Fede")]
    items += [item("add_search_hit", text="escucha help es lo mejor", author="fan")]  # search has no webhook
    ids = sb.add_many(items)
    deadline = time.monotonic() + 60
    while sb.webhook_counts()["pending"]:
        assert time.monotonic() < deadline, sb.webhook_counts()
        time.sleep(0.05)
    counts = sb.webhook_counts()
    # One delivery per item a network announces (the page post too), none for the keyword-search hit.
    assert counts["deliveries"] == len(ids) and counts["given_up"] == 0  # 1 + (len(ids) - 1)
    assert counts["duplicates_sent"] > 0 and counts["held_back"] > 0
    assert receiver.counts.received == counts["attempts"] == counts["deliveries"] + counts["duplicates_sent"]
    assert receiver.counts.duplicated == counts["duplicates_sent"]
    assert [rows(engine, i) for i in [page_post, *ids[:-1]]] == [1] * len(ids)
    assert rows(engine, ids[-1]) == 0  # searched for, never pushed: polling finds it
    # Out of order: the rows were stored in another order than the posts were written.
    pushed = ids[:-1]
    with Session(engine) as s:
        stored = list(s.execute(select(col(Post.external_id)).order_by(col(Post.id))).scalars())
    assert sorted(stored) == sorted([page_post, *pushed]) and [e for e in stored if e in pushed] != pushed


def test_x_deliveries_keep_the_posts_time_to_the_millisecond(sb: Sandbox, url: str, engine: Engine) -> None:
    """v1.1's created_at has whole seconds; timestamp_ms has the millisecond the poll would store too."""
    at = sb.now().replace(microsecond=789_000)
    mention = sb.add_mention("¿a qué hora exacta?", author="reloj", at=at)
    dm = sb.add_dm("¿y por mensaje?", author="reloj_dm", at=at)
    push = pusher(url)
    assert push.push("x", sb.x_activity(tweet_ids=(mention,))) == 200
    assert push.push("x", sb.x_activity(dm_ids=(dm,))) == 200
    with Session(engine) as s:
        stored = {p.external_id: aware(p.created_at) for p in s.execute(select(Post)).scalars()}
    assert stored == {mention: at, dm: at}
