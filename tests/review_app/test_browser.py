"""A manager signs in in a real browser, approves a suggested reply in two clicks, and the sandbox gets it once.

Drives Debian's chromium through Playwright for Python (never a downloaded browser) and takes a screenshot of
every page: into the test's temporary folder, or into ``docs/`` when ``ESCUCHA_SCREENSHOTS=docs`` asks for the
README's pictures (a plain test run must not rewrite committed files).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, update
from sqlmodel import Session, col

from classifier.registry import load_scorer
from demo.run import settings_env
from ground.db import make_engine
from ground.settings import Settings
from models.schema import migrate
from models.staff import DEMO_PASSWORD, ensure_demo_team
from models.tables import Post, Reply, ReplyState, Staff
from networks.registry import build_listeners, build_senders
from responder.drafts import NEXT_STEPS
from review_app.launch import streamlit_command
from sandbox.server import Sandbox
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    need_chromium,
    settle,
    shots_dir,
    sign_in,
    wait_healthy,
)
from worker.scheduler import Worker

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.slow


MANAGER = "lucia@demo.escucha"
ADMIN = "alex@demo.escucha"
WAIT_MS = 30_000
COMPLAINT = "@brand my order #5521 never arrived and nobody answers, I want my money back"
OTHERS = [
    ("la app no carga desde ayer y tengo que pagar hoy, ¿qué pasa?", "marta_q", "es"),
    ("thanks for the quick fix yesterday, great support", "joe_b", "en"),
    ("me cobraron dos veces la factura de octubre", "lu_perez", "es"),
    ("is the outage in Madrid going to be fixed today? <b>urgent</b> [link](http://evil)", "k_ng", "en"),
]


def test_manager_approves_in_the_browser_and_the_network_gets_exactly_that_reply(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    url_db = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = make_engine(url_db)
    migrate(engine)
    with Session(engine) as s:
        ensure_demo_team(s)
    mention_id = sandbox.add_mention(COMPLAINT, author="ana_g", lang="en", followers=12_400)
    for text, author, lang in OTHERS:
        sandbox.add_mention(text, author=author, lang=lang)
    settings = Settings(database_url=url_db, **sandbox.settings_overrides())
    Worker(
        engine, listeners=build_listeners(settings), senders=build_senders(settings), scorer=load_scorer()
    ).run_once()
    with Session(engine) as s:
        post = s.execute(select(Post).where(col(Post.external_id) == mention_id)).scalar_one()
        reply = s.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
        assert reply.state == ReplyState.SUGGESTED
        post_id, reply_id, suggested = post.id, reply.id, reply.text
    assert not [r for r in sandbox.sent if r.kind != "dm"], "nothing is sent before the approval"

    port = free_port()
    env = {**os.environ, **settings_env(settings), "ESCUCHA_DATABASE_URL": url_db}
    app = subprocess.Popen(
        streamlit_command(port=port, headless=True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    shots = shots_dir(tmp_path)
    shots.mkdir(exist_ok=True)
    try:
        wait_healthy(base, app)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{base}/?lang=en")
            expect(page.get_by_role("textbox", name="E-mail")).to_be_visible(timeout=WAIT_MS)
            settle(page)
            page.screenshot(path=str(shots / "review-signin.png"))
            page.get_by_role("textbox", name="E-mail").fill(MANAGER)
            page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # Lucía's interface is in Spanish: her own choice wins over the link's ?lang=en once she signs in.
            card = page.locator(f".st-key-post_{post_id}")
            expect(card).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Cola de respuesta")).to_be_visible()
            page.get_by_text("English", exact=True).click()
            expect(page.get_by_role("heading", name="Response queue")).to_be_visible(timeout=WAIT_MS)
            settle(page)
            page.screenshot(path=str(shots / "review-queue.png"), full_page=False)

            card.get_by_role("button", name="Approve and send").click()  # click 1
            confirm = page.locator(f".st-key-confirm_box_{reply_id}")
            expect(confirm).to_be_visible(timeout=WAIT_MS)
            assert sandbox.sent == [] or all(r.in_reply_to != mention_id for r in sandbox.sent)
            confirm.get_by_role("button", name="Confirm and send").click()  # click 2
            expect(page.get_by_text(f"Reply {reply_id} approved and sent")).to_be_visible(timeout=WAIT_MS)
            expect(card).to_have_count(0)

            page.get_by_role("link", name="My inbox").click()
            expect(page.get_by_role("heading", name="My inbox")).to_be_visible(timeout=WAIT_MS)
            settle(page)
            page.screenshot(path=str(shots / "review-inbox.png"))
            page.get_by_role("link", name="Trends").click()
            expect(page.get_by_role("heading", name="Brand trends")).to_be_visible(timeout=WAIT_MS)
            page.wait_for_selector("canvas, svg.marks", timeout=WAIT_MS)
            settle(page)
            # The README's trends picture is the Spanish one (test_browser_trends.py); this one stays English.
            page.screenshot(path=str(shots / "review-trends-en.png"), full_page=True)
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("textbox", name="E-mail")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("textbox", name="E-mail").fill(ADMIN)
            page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Admin").click()
            expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible(timeout=WAIT_MS)
            page.get_by_text("Lucía Romero").first.click()
            settle(page)
            page.screenshot(path=str(shots / "review-admin.png"), full_page=True)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=20)

    answers = [r for r in sandbox.sent if r.in_reply_to == mention_id]
    assert [(r.network, r.text) for r in answers] == [("x", suggested)]
    with Session(engine) as s:
        stored = s.get(Reply, reply_id)
        assert stored is not None and stored.state == ReplyState.SENT and stored.external_id == answers[0].external_id
    engine.dispose()
    pages = ("signin", "queue", "inbox", "trends-en", "admin")
    assert all((shots / f"review-{name}.png").stat().st_size > 10_000 for name in pages)


def test_sign_in_lasts_through_a_reload_and_a_link_and_ends_with_sign_out(sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue 14, done-when 1: F5 and a deep link keep the person signed in; after sign-out the link asks again."""
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    url_db = f"sqlite:///{tmp_path / 'session.db'}"
    engine = make_engine(url_db)
    migrate(engine)
    with Session(engine) as s:
        ensure_demo_team(s)
    mention_id = sandbox.add_mention(COMPLAINT, author="ana_g", lang="en", followers=12_400)
    for text, author, lang in OTHERS:
        sandbox.add_mention(text, author=author, lang=lang)
    settings = Settings(database_url=url_db, **sandbox.settings_overrides())
    Worker(engine, listeners=build_listeners(settings), senders={}, scorer=load_scorer()).run_once()
    with Session(engine) as s:
        post = s.execute(select(Post).where(col(Post.external_id) == mention_id)).scalar_one()
        post_id = post.id
    engine.dispose()

    port = free_port()
    env = {**os.environ, **settings_env(settings), "ESCUCHA_DATABASE_URL": url_db}
    app = subprocess.Popen(
        streamlit_command(port=port, headless=True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    link = f"{base}/queue?post={post_id}"
    try:
        wait_healthy(base, app)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.goto(f"{base}/?lang=en")
            page.get_by_role("textbox", name="E-mail").fill(MANAGER)
            page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Cola de respuesta")).to_be_visible(timeout=WAIT_MS)
            # The cookie is set by the app's own endpoint: no script can read it, no other site's page sends it.
            deadline = time.monotonic() + 30
            while not (cookies := [c for c in context.cookies() if c["name"] == "escucha_session"]):
                assert time.monotonic() < deadline, "the session cookie was never set"
                page.wait_for_timeout(200)
            assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
            assert page.evaluate("document.cookie").find("escucha_session") == -1

            page.reload()
            expect(page.get_by_role("heading", name="Cola de respuesta")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()

            page.goto(link)
            card = page.locator(f".st-key-post_{post_id}")
            expect(card).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("[class*='st-key-post_']")).to_have_count(1)
            assert "escucha_session" not in page.url and "token" not in page.url
            settle(page)
            page.screenshot(path=str(tmp_path / "deep-link.png"))

            page.get_by_role("button", name="Cerrar sesión").click()
            expect(page.get_by_role("textbox", name="Correo electrónico")).to_be_visible(timeout=WAIT_MS)
            page.goto(link)
            expect(page.get_by_role("textbox", name="Correo electrónico")).to_be_visible(timeout=WAIT_MS)
            expect(card).to_have_count(0)
            # Signing in from the link opens what it points at.
            page.get_by_role("textbox", name="Correo electrónico").fill(MANAGER)
            page.get_by_role("textbox", name="Contraseña").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Entrar").click()
            expect(card).to_be_visible(timeout=WAIT_MS)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=20)


AGENT = "marta@demo.escucha"
EDIT = " Your order #5521 left our warehouse today: tracking in your DMs."


def test_an_agents_edit_is_approved_from_waiting_for_approval_and_sent_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue 14, done-when 2: agent submits an edit; the manager sees name and diff, approves; sent once."""
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    url_db = f"sqlite:///{tmp_path / 'approvals.db'}"
    engine = make_engine(url_db)
    migrate(engine)
    with Session(engine) as s:
        ensure_demo_team(s)
        s.execute(update(Staff).values(ui_language="en"))
        s.commit()
    mention_id = sandbox.add_mention(COMPLAINT, author="ana_g", lang="en", followers=12_400)
    settings = Settings(database_url=url_db, **sandbox.settings_overrides())
    Worker(engine, listeners=build_listeners(settings), senders={}, scorer=load_scorer()).run_once()
    with Session(engine) as s:
        post = s.execute(select(Post).where(col(Post.external_id) == mention_id)).scalar_one()
        reply = s.execute(select(Reply).where(col(Reply.post_id) == post.id)).scalar_one()
        assert reply.state == ReplyState.SUGGESTED
        post_id, reply_id, suggested = post.id, reply.id, reply.text
    # As an agent who has looked the order up: the request to move to a DM gives way to the answer. (Appended to
    # the longer draft an angry customer gets, the answer made 329 characters, which X refuses.)
    dm_request = NEXT_STEPS[("en", "public", True)]
    assert dm_request in suggested
    edited = suggested.replace(dm_request, "") + EDIT
    assert len(edited) <= 280

    port = free_port()
    env = {**os.environ, **settings_env(settings), "ESCUCHA_DATABASE_URL": url_db}
    app = subprocess.Popen(
        streamlit_command(port=port, headless=True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    shots = shots_dir(tmp_path)
    shots.mkdir(exist_ok=True)
    try:
        wait_healthy(base, app)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            sign_in(page, base, AGENT, DEMO_PASSWORD)
            expect(page.get_by_role("heading", name="Response queue")).to_be_visible(timeout=WAIT_MS)
            card = page.locator(f".st-key-post_{post_id}")
            expect(card).to_be_visible(timeout=WAIT_MS)
            box = card.get_by_role("textbox", name="Suggested reply")
            box.fill(edited)
            box.press("Control+Enter")
            settle(page)
            card.get_by_role("button", name="Submit for approval").click()
            expect(page.get_by_text(f"Reply {reply_id} submitted for approval.")).to_be_visible(timeout=WAIT_MS)
            assert all(r.in_reply_to != mention_id for r in sandbox.sent), "a submission sends nothing"
            page.get_by_role("link", name="My submissions").click()
            expect(page.locator(f".st-key-submission_{reply_id}")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("button", name="Sign out").click()
            # The sign-out has run once the form is back; navigating before that left the agent signed in.
            expect(page.get_by_role("textbox", name="E-mail")).to_be_visible(timeout=WAIT_MS)

            sign_in(page, base, MANAGER, DEMO_PASSWORD)
            page.get_by_role("link", name="Waiting for approval").click()
            expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible(timeout=WAIT_MS)
            item = page.locator(f".st-key-approval_{reply_id}")
            expect(item).to_be_visible(timeout=WAIT_MS)
            expect(item.get_by_text("From Marta Gil")).to_be_visible()
            # The agent's rewrite reads as one struck phrase and one new one.
            expect(item.locator("ins", has_text="#5521 left our warehouse today")).to_be_visible()
            expect(item.locator("del", has_text="Please send us a direct message")).to_be_visible()
            expect(item.get_by_text(COMPLAINT)).to_be_visible()
            # The whole card, buttons included, before the picture: a run still drawing shows half a page.
            expect(item.get_by_role("button", name="Approve and send")).to_be_visible(timeout=WAIT_MS)
            expect(item.get_by_role("checkbox", name="Select")).to_be_attached(timeout=WAIT_MS)
            settle(page)
            page.screenshot(path=str(shots / "review-approvals.png"))
            item.get_by_role("button", name="Approve and send").click()
            expect(page.get_by_text(f"Reply {reply_id} approved and sent")).to_be_visible(timeout=WAIT_MS)
            expect(item).to_have_count(0)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=20)

    answers = [r for r in sandbox.sent if r.in_reply_to == mention_id]
    assert [(r.network, r.text) for r in answers] == [("x", edited)]
    with Session(engine) as s:
        stored = s.get(Reply, reply_id)
        assert stored is not None and stored.state == ReplyState.SENT and stored.external_id == answers[0].external_id
        marta = s.execute(select(Staff).where(col(Staff.email) == AGENT)).scalar_one()
        assert stored.submitted_by_id == marta.id
    engine.dispose()
    assert (shots / "review-approvals.png").stat().st_size > 10_000
