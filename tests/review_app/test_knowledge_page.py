"""The knowledge-base page: managers and admins edit it, others are refused, and hostile article text is inert."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from knowledge.articles import ArticleDraft
from knowledge.encoder import default_encoder
from models.knowledge import KbArticle
from responder.knowledge_admin import save_article_as, set_article_active_as
from responder.permissions import NotAllowed
from review_app.i18n import t
from tests.support.desk import HOSTILE, audits, desk_engine, open_app, run_view, user


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file, with the encoder already loaded in this process.

    The app runs in the test's process, so the first save would otherwise spend the script's whole time limit
    loading the model.
    """
    default_encoder()
    yield from desk_engine(tmp_path, monkeypatch)


def _article(engine: Engine, slug: str) -> KbArticle:
    with Session(engine) as s:
        return s.execute(select(KbArticle).where(col(KbArticle.slug) == slug)).scalar_one()


@pytest.mark.parametrize("role", ["agent", "marketing"])
def test_only_managers_and_admins_may_edit_the_knowledge_base(app_engine: Engine, role: str) -> None:
    member = user(app_engine, f"Role {role}", role)
    at = open_app(member)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/knowledge.py")
    direct = run_view("knowledge.py", member)
    assert [i.value for i in direct.info] == [t("en", "kb_not_allowed")]
    draft = ArticleDraft(slug="x", language="en", title="X", answer="Y")
    with Session(app_engine) as s, pytest.raises(NotAllowed):
        save_article_as(s, staff=member, draft=draft)
    with Session(app_engine) as s:
        assert s.execute(select(KbArticle)).first() is None


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_a_manager_adds_edits_and_retires_an_article_from_the_page(app_engine: Engine, role: str) -> None:
    member = user(app_engine, f"Role {role}", role)
    at = open_app(member, lang="es")
    at.switch_page("views/knowledge.py").run()
    assert at.title[0].value == t("es", "page_knowledge")
    at.text_input(key="kb_f_slug").input("store-hours")
    at.selectbox(key="kb_f_language").set_value("en")
    at.text_input(key="kb_f_title").input("Store hours")
    at.text_area(key="kb_f_answer").input("We open 10:00 to 21:00, Sundays 11:00 to 20:00.")
    at.text_area(key="kb_f_questions").input("When do you open?\nAre you open on Sunday?")
    at.button(key="kb_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    row = _article(app_engine, "store-hours")
    assert row.active and row.language == "en" and row.questions == "When do you open?\nAre you open on Sunday?"
    assert row.embedding is not None and row.updated_by == f"staff:{member.id}"
    assert audits(app_engine, "kb_article_saved") == 1
    # Pick it, change the answer, then retire it.
    at.selectbox(key="kb_pick").set_value(row.id).run()
    assert at.text_area(key="kb_f_answer").value.startswith("We open 10:00")
    at.text_area(key="kb_f_answer").input("We open 9:00 to 21:00.")
    at.button(key="kb_save").click().run()
    assert _article(app_engine, "store-hours").answer == "We open 9:00 to 21:00."
    at.button(key="kb_toggle").click().run()
    assert not _article(app_engine, "store-hours").active
    assert audits(app_engine, "kb_article_retired") == 1


def test_a_bad_article_is_refused_with_its_reason_and_nothing_is_stored(app_engine: Engine) -> None:
    member = user(app_engine, "Mara Manager", "manager")
    at = open_app(member)
    at.switch_page("views/knowledge.py").run()
    at.text_input(key="kb_f_slug").input("Not a slug!")
    at.text_input(key="kb_f_title").input("T")
    at.text_area(key="kb_f_answer").input("A")
    at.button(key="kb_save").click().run()
    # The message is markdown-escaped for the page; unescaped it names the field and what is wrong.
    assert any("slug 'Not a slug!'" in re.sub(r"\\(.)", r"\1", e.value) for e in at.error), [e.value for e in at.error]
    with Session(app_engine) as s:
        assert s.execute(select(KbArticle)).first() is None


def test_hostile_article_text_renders_inert(app_engine: Engine) -> None:
    member = user(app_engine, "Mara Manager", "manager")
    with Session(app_engine) as s:
        draft = ArticleDraft(slug="evil", language="en", title=HOSTILE, answer=HOSTILE, questions=[HOSTILE])
        row = save_article_as(s, staff=member, draft=draft)
        set_article_active_as(s, staff=member, article_id=row.id, active=True)  # type: ignore[arg-type]
    at = open_app(member)
    at.switch_page("views/knowledge.py").run()
    at.text_input(key="kb_try_text").input(HOSTILE).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    hits = [m for m in shown if "script" in m]
    assert hits, shown  # the try box listed the article, by its title
    for text in hits:
        assert "<script>" not in text and "](http://evil)" not in text and "**bold**" not in text
        assert r"\<script\>" in text
    frame = at.dataframe[0].value
    assert HOSTILE in set(frame.iloc[:, 4])  # the table shows the title as it was written, as text
