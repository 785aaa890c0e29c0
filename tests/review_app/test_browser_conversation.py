"""Issue 13, done-when: in a real browser an agent answers a DM conversation from My inbox, a manager approves it,
and the sandbox records exactly that answer once.

The customer wrote three DMs; the automatic acknowledgement went out. The card in My inbox is the conversation (one
card, not three) and its page shows the three messages and the acknowledgement in order, with the answer to write.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from classifier.registry import load_scorer
from demo.run import settings_env
from ground.db import make_engine
from ground.settings import Settings
from models.schema import migrate
from models.staff import DEMO_PASSWORD, ensure_demo_team
from models.tables import Post, Reply, ReplyKind, ReplyState, Staff
from networks.registry import build_listeners, build_senders
from review_app.launch import streamlit_command
from sandbox.server import Sandbox
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    free_port,
    need_chromium,
    settle,
    shots_dir,
    sign_in,
    wait_healthy,
)
from worker.scheduler import Worker

pytestmark = pytest.mark.slow

AGENT = "marta@demo.escucha"
MANAGER = "lucia@demo.escucha"
CUSTOMER = "carla_mx64"
MESSAGES = (
    "Hola, mi pedido #5521 no ha llegado",
    "¿Alguien me lee? <b>urgente</b> [aquí](http://evil)",
    "Pagué hace una semana y sigo sin noticias",
)
ANSWER = "Hola Carla, tu pedido #5521 sale hoy por mensajero; te enviamos el número de seguimiento."


def test_agent_answers_a_dm_conversation_a_manager_approves_it_and_it_is_sent_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    url_db = f"sqlite:///{tmp_path / 'conversation.db'}"
    engine = make_engine(url_db)
    migrate(engine)
    with Session(engine) as s:
        ensure_demo_team(s)
        # Only Marta takes work today, so the conversation is hers.
        for member in s.execute(select(Staff)).scalars():
            member.available = member.email == AGENT
            s.add(member)
        s.commit()
    for text in MESSAGES:
        sandbox.add_dm(text, author=CUSTOMER)
    settings = Settings(database_url=url_db, **sandbox.settings_overrides())
    Worker(
        engine, listeners=build_listeners(settings), senders=build_senders(settings), scorer=load_scorer()
    ).run_once()
    with Session(engine) as s:
        posts = list(s.execute(select(Post).where(col(Post.kind) == "dm").order_by(col(Post.created_at))).scalars())
        assert len(posts) == 3 and len({p.conversation_ref for p in posts}) == 1
        cid = posts[0].conversation_ref
        newest = max(posts, key=lambda p: (p.created_at, p.id or 0))
        answer = s.execute(
            select(Reply).where(col(Reply.post_id) == newest.id, col(Reply.kind) == ReplyKind.ANSWER)
        ).scalar_one()
        reply_id = answer.id
    acks = [r for r in sandbox.sent if r.kind == "dm"]
    assert len(acks) == 1, "one acknowledgement for the conversation, before anyone answers"

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
            page = browser.new_page(viewport={"width": 1440, "height": 1300})
            sign_in(page, base, AGENT, DEMO_PASSWORD)
            expect(page.get_by_role("heading", name="Cola de respuesta")).to_be_visible(timeout=WAIT_MS)
            page.get_by_text("English", exact=True).click()
            expect(page.get_by_role("heading", name="Response queue")).to_be_visible(timeout=WAIT_MS)

            # My inbox: one card for the conversation, not one per message.
            page.get_by_role("link", name="My inbox").click()
            expect(page.get_by_role("heading", name="My inbox")).to_be_visible(timeout=WAIT_MS)
            cards = page.locator("[class*='st-key-post_']")
            expect(cards).to_have_count(1, timeout=WAIT_MS)
            page.get_by_role("link", name="Open the conversation (3 waiting)").click()

            conversation = page.locator(f".st-key-conversation_{cid}")
            expect(conversation).to_be_visible(timeout=WAIT_MS)
            for text in (*MESSAGES, acks[0].text):
                expect(conversation.get_by_text(text, exact=True)).to_be_visible()
            # Hostile text stays text: no link, no bold.
            expect(page.locator("a[href='http://evil']")).to_have_count(0)
            box = page.locator(f".st-key-reply_text_{reply_id} textarea")
            expect(box).to_be_editable()
            settle(page)
            page.screenshot(path=str(shots / "review-conversation.png"), full_page=True)

            box.fill(ANSWER)
            box.press("Control+Enter")  # Streamlit takes a text area's value on Ctrl+Enter or blur
            settle(page)
            conversation.get_by_role("button", name="Submit for approval").click()
            # The feedback shows beside the conversation acted on.
            expect(conversation.get_by_text(f"Reply {reply_id} submitted for approval")).to_be_visible(timeout=WAIT_MS)
            assert [r for r in sandbox.sent if r.text == ANSWER] == [], "an agent's submission sends nothing"

            # The manager opens the same conversation by its link and approves it in two clicks.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("textbox", name="E-mail")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("textbox", name="E-mail").fill(MANAGER)
            page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # Lucía's interface is in Spanish: her own choice wins once she signs in; she switches to English.
            expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible(timeout=WAIT_MS)
            page.get_by_text("English", exact=True).click()
            expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=WAIT_MS)
            page.goto(f"{base}/conversation?id={cid}")
            conversation = page.locator(f".st-key-conversation_{cid}")
            expect(conversation).to_be_visible(timeout=WAIT_MS)
            expect(page.locator(f".st-key-reply_text_{reply_id} textarea")).to_have_value(ANSWER)
            conversation.get_by_role("button", name="Approve and send").click()
            confirm = page.locator(f".st-key-confirm_box_{reply_id}")
            expect(confirm).to_be_visible(timeout=WAIT_MS)
            confirm.get_by_role("button", name="Confirm and send").click()
            expect(conversation.get_by_text(f"Reply {reply_id} approved and sent")).to_be_visible(timeout=WAIT_MS)
            expect(conversation.get_by_text(ANSWER, exact=True).first).to_be_visible()
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=20)

    sent = [r for r in sandbox.sent if r.text == ANSWER]
    assert len(sent) == 1 and sent[0].kind == "dm"
    assert len([r for r in sandbox.sent if r.kind == "dm"]) == 2  # the acknowledgement and the answer, nothing else
    with Session(engine) as s:
        stored = s.get(Reply, reply_id)
        assert stored is not None and stored.state == ReplyState.SENT and stored.text == ANSWER
        statuses = {p.status for p in s.execute(select(Post).where(col(Post.conversation_ref) == cid)).scalars()}
        assert statuses == {"replied"}
    engine.dispose()
    assert (shots / "review-conversation.png").stat().st_size > 10_000
