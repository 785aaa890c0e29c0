"""In a real browser: a manager opens a customer's page from their card in the queue and links the Facebook
identity the page suggests; both networks' messages then show on one page (issue 13).

Drives Debian's chromium through Playwright (never a downloaded browser). The screenshot goes to the test's
temporary folder, or to ``docs/review-customer.png`` when ``ESCUCHA_SCREENSHOTS=docs`` asks for it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from classifier.lexicon_scorer import LexiconScorer
from demo.run import settings_env
from ground.db import make_engine
from ground.settings import Settings
from models.schema import migrate
from models.staff import DEMO_PASSWORD, ensure_demo_team
from models.tables import Author, CustomerLink, Post, Staff
from networks.registry import build_listeners
from review_app.launch import streamlit_command
from sandbox.seed import seed_cross_channel
from sandbox.server import Sandbox
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, free_port, need_chromium, shots_dir, wait_healthy
from worker.scheduler import Worker

pytestmark = pytest.mark.slow

MANAGER = "lucia@demo.escucha"
WAIT_MS = 60_000
FB_TEXT = "Llevo una semana esperando el pedido #5521 y en Twitter nadie me responde"


def test_manager_opens_a_customer_from_a_card_and_links_the_suggested_identity(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    url_db = f"sqlite:///{tmp_path / 'customer.db'}"
    engine = make_engine(url_db)
    migrate(engine)
    with Session(engine) as s:
        ensure_demo_team(s)
    seed_cross_channel(sandbox)
    settings = Settings(database_url=url_db, **sandbox.settings_overrides())
    # The real tweepy and facebook-sdk clients read the sandbox; no sender: nothing needs to go out here.
    Worker(engine, listeners=build_listeners(settings), senders={}, scorer=LexiconScorer()).run_once()
    with Session(engine) as s:
        mention = s.execute(
            select(Post).where(col(Post.kind) == "mention", col(Post.text).contains("#5521"))
        ).scalar_one()
        x_author = s.get(Author, mention.author_id)
        fb_author = s.execute(select(Author).where(col(Author.display_name) == "Carlos Ruiz",
                                                   col(Author.network) == "facebook")).scalar_one()  # fmt: skip
        assert x_author is not None and x_author.customer_id != fb_author.customer_id
        post_id, x_customer, fb_author_id = mention.id, x_author.customer_id, fb_author.id
        lucia = s.execute(select(Staff).where(col(Staff.email) == MANAGER)).scalar_one()
        lucia_id = lucia.id

    port = free_port()
    env = {**os.environ, **settings_env(settings), "ESCUCHA_DATABASE_URL": url_db}
    app = subprocess.Popen(
        streamlit_command(port=port, headless=True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    shots = shots_dir(tmp_path)
    try:
        wait_healthy(base, app)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1440, "height": 1600})
            page = context.new_page()
            page.goto(f"{base}/queue?post={post_id}&lang=en")
            page.get_by_role("textbox", name="E-mail").fill(MANAGER)
            page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            card = page.locator(f".st-key-post_{post_id}")
            expect(card).to_be_visible(timeout=WAIT_MS)
            link = card.get_by_role("link", name="Ficha del cliente")
            expect(link).to_be_visible(timeout=WAIT_MS)
            # Markdown links open a new tab; the session cookie signs it in as the same person.
            with context.expect_page(timeout=WAIT_MS) as opened:
                link.click()
            customer = opened.value
            expect(customer.get_by_role("heading", name="Cliente", exact=True)).to_be_visible(timeout=WAIT_MS)
            assert f"id={x_customer}" in customer.url
            suggestion = customer.locator(f".st-key-suggest_{fb_author_id}")
            expect(suggestion).to_be_visible(timeout=WAIT_MS)
            expect(customer.get_by_text(FB_TEXT)).to_have_count(0)
            suggestion.get_by_role("button", name="Vincular").click()
            expect(customer.get_by_text("Identidad vinculada con este cliente.")).to_be_visible(timeout=WAIT_MS)
            expect(customer.get_by_text(FB_TEXT).first).to_be_visible(timeout=WAIT_MS)
            customer.get_by_text("English", exact=True).click()
            expect(customer.get_by_role("heading", name="Customer", exact=True)).to_be_visible(timeout=WAIT_MS)
            heading = customer.get_by_role("heading", name="Customer", exact=True)
            heading.scroll_into_view_if_needed()
            customer.wait_for_timeout(1500)
            customer.screenshot(path=str(shots / "review-customer.png"))
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=20)

    with Session(engine) as s:
        row = s.execute(select(CustomerLink)).scalar_one()
        assert (row.action, row.staff_id, row.author_id, row.to_customer_id) == (
            "link", lucia_id, fb_author_id, x_customer
        )  # fmt: skip
        assert "order #5521" in row.basis and "same name" in row.basis
        fb = s.get(Author, fb_author_id)
        assert fb is not None and fb.customer_id == x_customer
    engine.dispose()
    assert (shots / "review-customer.png").stat().st_size > 10_000
