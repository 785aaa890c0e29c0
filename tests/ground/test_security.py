"""Secrets never reach a log line, a stored row or a page: network tokens, app secrets and staff passwords.

Real-looking credentials run through the product paths that log and store errors: worker polls against the
sandbox with 401, 429, 500, malformed answers and a network that is gone; the outbox; failed and throttled
sign-ins; the review app's error paths. Everything logged (DEBUG, every logger: urllib3, tweepy, oauthlib,
facebook-sdk…), every row of every table and every rendered page is searched for the secrets, raw and URL-encoded.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import streamlit as st
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col
from streamlit.testing.v1 import AppTest

import networks.registry as real_registry
from classifier.lexicon_scorer import LexiconScorer
from ground.db import get_engine
from ground.redact import MASK, redact, register, reveal
from ground.settings import Settings, get_settings
from listeners.poller import poll_source
from models.auth import MAX_FAILURES, hash_password
from models.tables import PostKind, Reply, ReplyState, SourceCursor
from networks.registry import build_listeners, build_senders
from responder.outbox import send_one
from responder.status import collect_status
from review_app import context
from sandbox.server import Sandbox
from tests.support.desk import desk_engine, sign_in
from tests.support.factories import scored_post, staff
from worker.scheduler import Worker

ROOT = Path(__file__).resolve().parents[2]
X_BEARER = "AAAAAAAAAAAAAAAAAAAAAJ7x0gEAAAAAq3%2FVg1yZp8Kc%2BZtX2mQw4ReL0cY%3D9xk2Lq8vT0bN5wR7yH1pF3sD6gJ4mC2zV0aE8uI5"
X_CONSUMER_KEY = "kq7Zt2Rw9LmP4vX8cN1bH6jY3"
X_CONSUMER_SECRET = "L8qq9PZyRg6ieKGEKhZolGC0vJWLw8iEJ88DRdyOgXq4B2"
X_ACCESS_TOKEN = "1072250532645998596-Vq3mB8xT2pK9wR4nL7cJ5hY1zD6fG0sA"
X_ACCESS_SECRET = "Zt4mQ9xR2wP7vK1cN8bH3jY6lD5fG0sA9eU2iO4rT7yW1"
FB_PAGE_TOKEN = "EAAGm0PX4ZCpsBAO7ZBkQZCqZB1x5tH8yJ2kL9mN4pQ7rS0vW3zA6cE8fG1hI5jK2lM9nO4pR7sT0uV3wX6yZ"
FB_APP_SECRET = "3f9c1a7e5b2d8046c1e9a3b5d7f0e2c4"
STAFF_PASSWORD = "Tr0ub4dor&3-horse-staple"
WRONG_PASSWORD = "Tr0ub4dor&3-horse-stapler"
TOKENS = {
    "x_bearer_token": X_BEARER,
    "x_consumer_key": X_CONSUMER_KEY,
    "x_consumer_secret": X_CONSUMER_SECRET,
    "x_access_token": X_ACCESS_TOKEN,
    "x_access_token_secret": X_ACCESS_SECRET,
    "facebook_page_token": FB_PAGE_TOKEN,
    "facebook_app_secret": FB_APP_SECRET,
}
SECRETS = [*TOKENS.values(), STAFF_PASSWORD, WRONG_PASSWORD]
LIBRARY_LOGGERS = ("urllib3", "requests", "tweepy", "facebook", "oauthlib", "requests_oauthlib", "streamlit")


def leaks(text: str) -> list[str]:
    """The secrets found in ``text``, in any of the spellings a URL, a header or a signature base string uses."""
    found = []
    unescaped = text.replace("\\", "")  # markdown escaping must not hide a secret from the search
    for secret in SECRETS:
        once = quote(secret, safe="")
        if any(form in t for form in (secret, once, quote(once, safe="")) for t in (text, unescaped)):
            found.append(secret[:6] + "…")
    return found


def everything_stored(engine: Engine) -> str:
    """Every row of every table, as text."""
    with engine.connect() as conn:
        return "\n".join(repr(row) for table in SQLModel.metadata.sorted_tables for row in conn.execute(select(table)))


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """What every handler would write: the formatted lines (tracebacks included) and each bare message."""
    return caplog.text + "\n".join(r.getMessage() for r in caplog.records)


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in LIBRARY_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


def closed_port() -> int:
    """A local port nothing listens on (a network that has gone away)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the redaction itself ---


def test_known_secrets_are_masked_raw_and_url_encoded() -> None:
    register("s3cr3t/value+with=odd&chars", "short")
    line = "a s3cr3t/value+with=odd&chars b s3cr3t%2Fvalue%2Bwith%3Dodd%26chars c s3cr3t%252Fvalue%252Bwith"
    assert redact(line).startswith(f"a {MASK} b {MASK} c ")
    assert "short" in redact("a short word")  # too short to be a credential: left alone
    assert redact("Wrong e-mail or password. 12 posts") == "Wrong e-mail or password. 12 posts"


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ('urllib3 "GET /v21.0/1/feed?limit=25&appsecret_proof=ab12&access_token=EAAXYZ HTTP/1.1" 200', "limit=25"),
        ("Headers: {'User-Agent': 'Tweepy', 'Authorization': 'Bearer AAAA%2Fzz'}", "'User-Agent': 'Tweepy'"),
        (
            "Collected params: [('oauth_token', '1-abc'), ('oauth_consumer_key', 'ck'), ('max_results', '100')]",
            "('max_results', '100')",
        ),
        ('Authorization: OAuth oauth_nonce="9", oauth_signature="sig%3D", oauth_token="1-abc"', 'oauth_nonce="9"'),
        ("Client client_key=ck, client_secret=****, resource_owner_key=1-abc, signature_method=HMAC", "HMAC"),
        ("base string: GET&x%26oauth_consumer_key%3Dck%26oauth_nonce%3D9", "GET&x"),
    ],
)
def test_credential_shaped_fragments_are_masked_whatever_their_value(line: str, kept: str) -> None:
    clean = redact(line)
    assert kept in clean and MASK in clean
    for value in ("EAAXYZ", "ab12", "AAAA%2Fzz", "1-abc", "sig%3D", "=ck"):
        assert value not in clean, (value, clean)


def test_secrets_in_messages_and_tracebacks_are_masked_for_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    assert reveal(SecretStr(FB_PAGE_TOKEN)) == FB_PAGE_TOKEN  # what make_graph does when it builds the client
    capture_everything(caplog)
    log = logging.getLogger("networks.facebook.adapter")
    try:
        raise ConnectionError(f"Max retries exceeded with url: /v21.0/me?access_token={FB_PAGE_TOKEN}")
    except ConnectionError:
        log.exception("feed fetch failed for %s", FB_PAGE_TOKEN)
    assert leaks(everything_logged(caplog)) == []
    assert "Max retries exceeded" in caplog.text and caplog.text.count(MASK) >= 2


def test_the_cli_logging_setup_masks_secrets() -> None:
    script = (
        "import logging; from ground.logs import setup_logging; setup_logging('DEBUG'); "
        f"logging.getLogger('urllib3.connectionpool').debug('GET /me?access_token={FB_PAGE_TOKEN} 200'); "
        f"logging.getLogger('tweepy.client').debug(\"Headers: {{'Authorization': 'Bearer {X_BEARER}'}}\")"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "access_token=" in out.stderr and "Bearer" in out.stderr
    assert leaks(out.stderr) == []


# --- the worker against the sandbox, with faults ---


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(x_tokens=(X_BEARER, X_ACCESS_TOKEN), fb_tokens=(FB_PAGE_TOKEN,), fb_app_secret=FB_APP_SECRET) as sb:
        yield sb


def settings_for(sandbox_url: str, overrides: dict[str, Any]) -> Settings:
    return Settings(_env_file=None, **{**overrides, **TOKENS, "sandbox_url": sandbox_url, "fetch_retries": 1})  # type: ignore[call-arg]


def test_polls_sends_and_failures_never_log_or_store_a_token(
    engine: Engine, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)
    settings = settings_for(sandbox.url, sandbox.settings_overrides())
    sandbox.add_mention("@EscuchaHelp my order never arrived")
    sandbox.add_fb_post("¿Dónde está mi pedido?", author="Ana Pérez")
    listeners = build_listeners(settings)
    worker = Worker(engine, listeners=listeners, senders=build_senders(settings), scorer=LexiconScorer())
    outcomes: dict[str, set[str]] = {"x": set(), "facebook": set()}
    for listener in listeners:
        for fault in ("ok", 500, "malformed", 401, 429):  # the 429 last: it pauses X's endpoint
            if fault == "malformed":
                sandbox.malformed_next(3)
            elif fault != "ok":
                sandbox.fail_next(3, status=int(fault))
            outcomes[listener.network].add(worker.poll(listener).status)
            sandbox.clear_faults()
    assert all(o == {"ok", "temporary_failure", "auth_failed", "rate_limited"} for o in outcomes.values()), outcomes
    # The network goes away: connection errors quote the URL, and Graph's URLs carry access_token.
    gone = settings_for(f"http://127.0.0.1:{closed_port()}", sandbox.settings_overrides())
    for listener in build_listeners(gone):
        assert poll_source(engine, listener).status == "temporary_failure"
    with Session(engine, expire_on_commit=False) as s:
        post = scored_post(s, network="facebook", kind=PostKind.COMMENT)
        reply = Reply(
            post_id=post.id or 0,
            state=ReplyState.APPROVED,
            text="Lo revisamos.",
            attempts=1,
            idempotency_key="secrets-1",
        )
        s.add(reply)
        s.commit()
    # A retry looks the reply up first (a GET, so the token is in the URL) before it would send again; the lookup
    # cannot finish, so the reply waits in sending for the next look instead of going out blind.
    assert send_one(engine, build_senders(gone), reply.id or 0).result == "unknown"

    with Session(engine) as s:
        errors = [c.last_error or "" for c in s.execute(select(SourceCursor)).scalars()]
        stored_reply = s.get(Reply, reply.id)
        status = json.dumps(collect_status(s, settings), default=str)
    assert any("ConnectionError" in e and f"access_token={MASK}" in e for e in errors), errors
    assert stored_reply is not None and "ConnectionError" in (stored_reply.error or "")
    logged = everything_logged(caplog)
    assert MASK in logged and "Bearer" in logged  # DEBUG lines with credentials were there, masked
    assert leaks(logged) == []
    assert leaks(everything_stored(engine)) == []
    assert leaks(status) == []


# --- the review app ---


@pytest.fixture
def desk_with_networks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The review app with real senders built from settings, pointed at a network that is not there."""
    monkeypatch.setenv("ESCUCHA_SANDBOX_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("ESCUCHA_FACEBOOK_PAGE_ID", "102030405060708")
    monkeypatch.setenv("ESCUCHA_X_BRAND_USER_ID", "1072250532645998596")
    monkeypatch.setenv("ESCUCHA_FETCH_RETRIES", "0")
    for name, value in TOKENS.items():
        monkeypatch.setenv(f"ESCUCHA_{name.upper()}", value)
    for engine in desk_engine(tmp_path, monkeypatch):
        monkeypatch.setattr(context, "build_senders", real_registry.build_senders)
        st.cache_resource.clear()
        yield engine


def page_text(at: AppTest) -> str:
    """Everything the page sends to the browser, as text: every element's message, tables included."""
    parts = []
    for node in [*at.main, *at.sidebar]:
        parts.append(str(getattr(node, "proto", "")))
        try:
            value = getattr(node, "value", None)
        except Exception:  # elements without a value of their own
            value = None
        if hasattr(value, "to_csv"):
            parts.append(value.to_csv())
    return "\n".join(parts)


def test_the_review_app_shows_and_logs_no_secret_on_its_error_paths(
    desk_with_networks: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine = desk_with_networks
    capture_everything(caplog)
    with Session(engine, expire_on_commit=False) as s:
        boss = staff(s, "Ada Admin", role="admin", ui_language="en", password_hash=hash_password(STAFF_PASSWORD))
        lock = staff(s, "Lola Locked", role="agent", ui_language="en", password_hash=hash_password(STAFF_PASSWORD))
        post = scored_post(s, network="facebook", kind=PostKind.COMMENT, text="¿y mi reembolso?")
        post.assignee_id = boss.id
        reply = Reply(
            post_id=post.id or 0,
            state=ReplyState.PENDING_APPROVAL,
            text="Lo miramos ya.",
            attempts=1,
            idempotency_key="secrets-app",
        )
        s.add_all([post, reply])
        s.commit()
    # A source that failed against the missing network, as the worker would have stored it.
    for listener in build_listeners(get_settings()):
        poll_source(get_engine(), listener)
    pages: list[str] = []
    # Failed sign-ins: a wrong password, an unknown e-mail, then enough to be throttled.
    for email, password in [(boss.email, WRONG_PASSWORD), ("nobody@test", STAFF_PASSWORD)]:
        at = sign_in(email, password)
        assert at.error and "staff_id" not in at.session_state
        pages.append(page_text(at))
    for _ in range(MAX_FAILURES):
        at = sign_in(lock.email, WRONG_PASSWORD)
    locked = sign_in(lock.email, STAFF_PASSWORD)
    assert "staff_id" not in locked.session_state and locked.error[0].value.startswith("Too many failed")
    pages += [page_text(at), page_text(locked)]
    # Signed in: approve and send, which fails on the network (the lookup before a resend is a GET).
    at = sign_in(boss.email, STAFF_PASSWORD)
    assert at.session_state["staff_id"] == boss.id
    at.button(key=f"approve_{reply.id}").click().run()
    at.button(key=f"confirm_{reply.id}").click().run()
    warnings = [w.value.replace("\\", "") for w in at.warning]  # markdown-escaped
    assert any("ConnectionError" in w and f"access_token={MASK}" in w for w in warnings), warnings
    pages.append(page_text(at))
    for view in ("overview", "admin"):
        at.switch_page(f"views/{view}.py").run()
        assert not at.exception
        pages.append(page_text(at))
    assert "ConnectionError" in pages[-1] and "ConnectionError" in pages[-2]  # the sources' errors are shown
    with Session(engine) as s:
        failed = s.execute(select(Reply).where(col(Reply.id) == reply.id)).scalar_one()
        # Its lookup could not reach the network: it waits in sending (never resent blind), the reason recorded.
        assert failed.state == ReplyState.SENDING and "ConnectionError" in (failed.error or "")
    assert leaks("\n".join(pages)) == []
    assert leaks(everything_logged(caplog)) == []
    assert leaks(everything_stored(engine)) == []
