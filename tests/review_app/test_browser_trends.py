"""Trends in Spanish in a real browser: complaint themes a person would name, each with an example post; and the
desk's own "page not found" in the person's language, with links to their pages.

Drives Debian's chromium through Playwright; the screenshot goes to the test's temporary folder, or to
``docs/review-trends.png`` with ``ESCUCHA_SCREENSHOTS=docs`` (the README's picture).
"""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ground.db import make_engine
from models.schema import migrate
from models.staff import DEMO_PASSWORD, ensure_demo_team
from models.tables import PostKind, Reply, ReplyKind, ReplyState, Satisfaction, Staff
from review_app.launch import streamlit_command
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, free_port, need_chromium, shots_dir, wait_healthy
from tests.support.complaints import CHATTER, COMPLAINTS
from tests.support.factories import scored_post

pytestmark = pytest.mark.slow

MARKETING = "noa@demo.escucha"
AGENT = "marta@demo.escucha"
WAIT_MS = 30_000
# The first trends page of a process loads the encoder and makes every complaint's vector.
THEMES_MS = 180_000


def _seed(url: str) -> None:
    """Twelve days of complaints in both languages, some answered, some rated, and a little chatter."""
    engine = make_engine(url)
    migrate(engine)
    with Session(engine) as s:
        ensure_demo_team(s)
        # Everyone reads the desk in Spanish here (a signed-in person's own language wins over the link's).
        for member in s.exec(select(Staff)).all():
            member.ui_language = "es"
            s.add(member)
        n = 0
        for posts in COMPLAINTS.values():
            for lang, text in posts:
                kind = PostKind.DM if n % 4 == 0 else PostKind.MENTION
                post = scored_post(
                    s, text=text, language=lang, complaint=0.9, kind=kind, age_s=3600 * (5 + 12 * n), network="x"
                )
                post.due_at = post.created_at + timedelta(hours=1)
                if n % 2 == 0:
                    sent = post.created_at + timedelta(minutes=20 + 10 * n)
                    s.add(Reply(post_id=post.id or 0, kind=ReplyKind.ANSWER, state=ReplyState.SENT, text="ok",
                                idempotency_key=f"b{n}", sent_at=sent))  # fmt: skip
                    s.add(Satisfaction(post_id=post.id or 0, score=5 - n % 3, answered_at=sent + timedelta(hours=1)))
                s.add(post)
                n += 1
        for lang, text in CHATTER:
            scored_post(s, text=text, language=lang, complaint=0.6, sentiment="neutral", network="facebook")
        for i in range(6):
            scored_post(s, text=f"me encanta la tienda nueva {i}", language="es", sentiment="positive", complaint=0.0)
        s.commit()
    engine.dispose()


def _sign_in(page: object, base: str, email: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(f"{base}/?lang=es")
    page.get_by_role("textbox", name="Correo electrónico").fill(email)
    page.get_by_role("textbox", name="Contraseña").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible(timeout=WAIT_MS)


def test_trends_in_spanish_show_named_themes_and_unknown_pages_say_so(tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    url_db = f"sqlite:///{tmp_path / 'trends.db'}"
    _seed(url_db)
    port = free_port()
    env = {**os.environ, "ESCUCHA_DATABASE_URL": url_db}
    app = subprocess.Popen(
        streamlit_command(port=port, headless=True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    shots = shots_dir(tmp_path)
    try:
        wait_healthy(base, app)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1440, "height": 3400}).new_page()
            _sign_in(page, base, MARKETING)
            expect(page.get_by_role("heading", name="Tendencias de la marca")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Temas de queja")).to_be_visible(timeout=THEMES_MS)
            headings = page.get_by_text("Tema 1:")
            expect(headings).to_be_visible(timeout=THEMES_MS)
            expect(page.get_by_text("Tema 3:")).to_be_visible()
            # The weeks' chart comes after the last theme: once it shows, every theme is on the page.
            expect(page.get_by_text("Quejas por tema y semana")).to_be_visible(timeout=WAIT_MS)
            themes = page.locator("text=/^Tema \\d+:/").all_inner_texts()
            named = " ".join(themes).lower()
            # Delivery, refunds and account access, each named by words a person reads as that topic.
            assert any(w in named for w in ("pedido", "paquete", "delivered", "parcel", "envío", "llegar")), themes
            assert any(w in named for w in ("reembolso", "refund", "dinero", "money")), themes
            assert any(w in named for w in ("cuenta", "account", "contraseña", "password", "entrar")), themes
            assert page.get_by_text("Ejemplo:").count() == len(themes)
            # Spanish all the way: the chart's dates too, and no English left on the page.
            body = page.locator("section.main, [data-testid='stMain']").first.inner_text()
            for english in ("Complaint themes", "Example:", "Sentiment share", "Choose options", "Page not found"):
                assert english not in body
            # The whole page rendered, to its last section, and nothing failed on the way.
            expect(page.get_by_text("CSAT a lo largo del tiempo")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("Por red y canal")).to_be_visible()
            assert page.get_by_text("Algo ha fallado").count() == 0
            page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT_MS)
            page.wait_for_timeout(1500)  # let the charts draw before the picture
            page.screenshot(path=str(shots / "review-trends.png"), full_page=True)

            page.goto(f"{base}/no-such-page")
            expect(page.get_by_role("heading", name="Página no encontrada")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("/no-such-page")).to_be_visible()
            expect(page.get_by_role("link", name="Tendencias")).to_have_count(2)  # the sidebar's and the page's
            assert page.get_by_text("Page not found").count() == 0  # Streamlit's English dialog never opens
            browser.close()

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            # An agent following a link to the admin page: not theirs, and told so in their language.
            page.goto(f"{base}/admin?lang=es")
            page.get_by_role("textbox", name="Correo electrónico").fill(AGENT)
            page.get_by_role("textbox", name="Contraseña").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Entrar").click()
            expect(page.get_by_role("heading", name="Página no encontrada")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("link", name="Cola")).to_have_count(2)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=20)
