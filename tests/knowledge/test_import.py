"""Importing articles from CSV and Markdown: good files are stored, a bad row names its line and imports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from escucha.cli import app
from knowledge.importer import DEMO_MANUALS, ImportProblem, import_articles, parse_csv, parse_markdown, read_file
from models.knowledge import KbArticle

GOOD_CSV = (
    "slug,language,title,answer,questions,kind\n"
    "refunds,en,Refunds,Refunds take 3 to 5 working days.,When do I get my money back?|Refund please,article\n"
    'refunds,es,Reembolsos,"Los reembolsos tardan 3 a 5 días, laborables.",¿Cuándo me devolvéis el dinero?,article\n'
)

GOOD_MD = """# Store hours
slug: store-hours
language: en

## Answer
We open 10:00 to 21:00.

## Questions
- When do you open?
- Are you open on Sunday?

## Article
The full timetable.
"""


def test_csv_rows_become_drafts_with_their_questions() -> None:
    parsed = parse_csv(GOOD_CSV)
    assert [(p.draft.slug, p.draft.language) for p in parsed] == [("refunds", "en"), ("refunds", "es")]
    assert parsed[0].draft.questions == ["When do I get my money back?", "Refund please"]
    assert parsed[1].draft.answer == "Los reembolsos tardan 3 a 5 días, laborables."


def test_markdown_blocks_become_drafts() -> None:
    (item,) = parse_markdown(GOOD_MD)
    assert item.draft.title == "Store hours"
    assert item.draft.answer == "We open 10:00 to 21:00."
    assert item.draft.questions == ["When do you open?", "Are you open on Sunday?"]
    assert item.draft.body == "The full timetable."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("slug,language,title\nx,en,T\n", "line 1: the header lacks answer"),
        ("slug,language,title,answer,colour\nx,en,T,A,red\n", "line 1: unknown columns colour"),
        ("slug,language,title,answer\nrefunds,fr,T,A\n", "line 2: language 'fr'"),
        ("slug,language,title,answer\nBad Slug!,en,T,A\n", "line 2: slug 'Bad Slug!'"),
        ("slug,language,title,answer\nok,en,T,\n", "line 2: answer: empty"),
        ("slug,language,title,answer\nok,en,T,A,extra\n", "line 2: more cells than columns"),
        ("slug,language,title,answer\nok,en,T\n", "line 2: fewer cells than columns"),
        ("slug,language,title,answer\nok,en,T,A\nok,en,T2,B\n", "line 3: ok (en) appears twice"),
    ],
)
def test_malformed_csv_rows_are_named_with_their_line(text: str, expected: str) -> None:
    with pytest.raises(ImportProblem) as caught:
        parse_csv(text, name="kb.csv")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("kb.csv: nothing imported")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("intro text\n# T\nslug: a\nlanguage: en\n## Answer\nA\n", "line 1: text before the first '# Title'"),
        ("# T\nlanguage: en\n## Answer\nA\n", "line 1: no 'slug:' line"),
        ("# T\nslug: a\nlanguage: en\n## Recipe\nA\n", "unknown section 'Recipe'"),
        ("# T\nslug: a\nlanguage: en\ncolour: red\n## Answer\nA\n", "expected 'slug:', 'language:' or 'kind:'"),
        ("# T\nslug: a\nlanguage: en\n## Questions\n- q\n", "answer: empty"),
        ("", "no article ('# Title') in the file"),
    ],
)
def test_malformed_markdown_is_named_with_its_line(text: str, expected: str) -> None:
    with pytest.raises(ImportProblem) as caught:
        parse_markdown(text, name="kb.md")
    assert expected in str(caught.value)


def test_unknown_extension_and_binary_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "kb.txt").write_text("hello")
    (tmp_path / "kb.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ImportProblem, match=r"unknown file type \.txt"):
        read_file(tmp_path / "kb.txt")
    with pytest.raises(ImportProblem, match="not UTF-8"):
        read_file(tmp_path / "kb.csv")


def test_import_stores_embeds_and_replaces_by_slug_and_language(session: Session) -> None:
    assert import_articles(session, parse_csv(GOOD_CSV), actor="test") == 2
    session.commit()
    edited = GOOD_CSV.replace("Refunds take 3 to 5 working days.", "Refunds take 2 days.")
    import_articles(session, parse_csv(edited), actor="test")
    session.commit()
    rows = session.execute(select(KbArticle).order_by(KbArticle.language)).scalars().all()  # type: ignore[arg-type]
    assert [(r.language, r.answer) for r in rows] == [
        ("en", "Refunds take 2 days."),
        ("es", "Los reembolsos tardan 3 a 5 días, laborables."),
    ]
    assert all(r.embedding is not None and len(r.embedding) == 384 * 4 for r in rows)


def test_the_demo_manuals_cover_every_topic_in_both_languages() -> None:
    parsed = read_file(DEMO_MANUALS)
    slugs = {p.draft.slug for p in parsed}
    assert {"order-status", "refunds", "shipping", "account-access", "store-hours"} <= slugs
    for slug in slugs:
        assert {p.draft.language for p in parsed if p.draft.slug == slug} == {"es", "en"}


def test_cli_import_reports_a_bad_file_in_one_line_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ground.db import get_engine, make_engine
    from ground.settings import get_settings

    url = f"sqlite:///{tmp_path / 'kb.db'}"
    monkeypatch.setenv("ESCUCHA_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    bad = tmp_path / "kb.csv"
    bad.write_text(GOOD_CSV + "refunds,xx,T,A,,article\n")
    result = CliRunner().invoke(app, ["kb", "import", str(bad)])
    assert result.exit_code != 0
    assert "line 4: language 'xx'" in result.output
    good = tmp_path / "kb.md"
    good.write_text(GOOD_MD)
    result = CliRunner().invoke(app, ["kb", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "imported 1 article versions" in result.output
    engine = make_engine(url)
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(KbArticle)).scalar_one() == 1
    engine.dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()
