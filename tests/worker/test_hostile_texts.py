"""Hostile texts end to end: sandbox → real clients → listeners → store → classifier → assignment → the desk.

HTML and script, markdown and ``javascript:`` links, Streamlit's own markup and LaTeX, NUL and other
control characters (PostgreSQL refuses NUL in text), bidi overrides, a 120k-character post and zalgo, in
post texts and in author names, on both backends. Each post must be stored exactly once (NUL dropped,
nothing else lost but what the store documents), scored, assigned, and shown on the queue, inbox, trends
and overview pages as inert, visible text: ``st.text`` gets ``safe.plain`` of it, every markdown-rendered
element gets it through ``safe.md``, so no element renders a tag, a link or Streamlit markup from a stranger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from classifier.lexicon_scorer import LexiconScorer
from ground.settings import Settings
from models.store import MAX_TEXT, clean_text
from models.tables import Author, Post, PostStatus, Reply, ReplyKind, Role, Score, Staff
from networks.registry import build_listeners, build_senders
from review_app.safe import md, plain
from sandbox.server import Sandbox
from tests.support.db import pg_schema_url
from tests.support.desk import APP, desk_engine_on, run_view
from tests.support.factories import staff
from worker.scheduler import Worker

VIEWS = APP.parent / "views"
HUGE = "queja urgente " * 9_000  # 117k characters: cut to MAX_TEXT by the store
ZALGO = "Z̷̢̛̯̰a̶̡̧̛͚l̵̨̛̺g̵̢̛̱o̶̢̧̟ " * 150
TEXTS = {
    "script": "<script>alert(1)</script> mi pedido no llega",
    "img": '<img src=x onerror="alert(document.cookie)"> refund please',
    "link": "[click here](javascript:alert(1)) and [mail](http://evil.example) my order never arrived",
    "markdown": "# Heading\n\n**bold** _it_ ![img](http://evil.example/x.png)\n> quote\n- item\n```\ncode\n```",
    "streamlit": ":red[ALERTA] :material/warning: :blue-background[x] $\\LaTeX$ $$x^2$$ \\(y\\) mi pedido",
    "controls": "nul\x00byte bell\x07 escape\x1b[31mred\x1b[0m del\x7f tab\tand\r\nnew line, refund",
    "bidi": "bidi \u202egnp.exe\u202c isolate \u2066x\u2069 mark\u200f pedido roto",
    "iframe": "<iframe src=javascript:alert(1)></iframe><style>body{display:none}</style>&lt;b&gt;",
    "huge": HUGE,
    "zalgo": ZALGO,
}
AUTHORS = {  # X handles and Facebook names as hostile as the texts
    "script": "<script>x</script>",
    "img": "**bold**<img src=x>",
    "link": "[me](javascript:alert(1))",
    "markdown": "# Name",
    "streamlit": ":red[Admin]",
    "controls": "nul\x00name",
    "bidi": "\u202enimda",
    "iframe": "<iframe>",
    "huge": "h" * 300,
    "zalgo": ZALGO[:40],
}
# The strangers' markup that must never reach a markdown-rendered element as it is (the desk's own
# ``:red[...]`` badges and ``**`` are not in this list: they come from our code, not from a post).
LIVE = [
    "<script", "<img", "<iframe", "<style", "](javascript:", "](http://evil", "javascript:", ":red[ALERTA]",
    ":red[Admin]", ":material/warning:", ":blue-background[", "$$x^2$$", "$\\LaTeX$", "\\(y\\)", "**bold**", "# Name",
]  # fmt: skip
MARKDOWN = MarkdownIt("commonmark")  # raw HTML enabled, as a browser would see it
ALLOWED_TAGS = {"p", "strong", "em", "br"}


@dataclass
class Pipeline:
    engine: Engine
    sandbox: Sandbox
    manager: Staff
    ids: dict[str, str]  # hostile key + channel → external id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_for_module(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One empty database per backend for the whole module: the pipeline runs once, the pages read it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'desk.db'}"
        return
    with pg_schema_url() as url:
        yield url


@pytest.fixture(scope="module")
def app_engine(db_for_module: str) -> Iterator[Engine]:
    """The review app's own engine on the module's database, shared with the worker."""
    with pytest.MonkeyPatch.context() as patch:
        yield from desk_engine_on(db_for_module, patch, senders=True)


@pytest.fixture(scope="module")
def pipeline(app_engine: Engine) -> Iterator[Pipeline]:
    with Sandbox() as sandbox:
        ids: dict[str, str] = {}
        page_post = sandbox.add_fb_post("¡Nueva colección!")
        # 23 posts that need an answer: one queue page (25) holds them all.
        for key, text in TEXTS.items():
            ids[f"{key}/mention"] = sandbox.add_mention(text, author=AUTHORS[key][:15], lang="es")
        for key in ("img", "link", "streamlit", "controls", "huge"):
            ids[f"{key}/comment"] = sandbox.add_fb_comment(page_post, TEXTS[key], author=AUTHORS[key])
        for key in ("script", "controls", "bidi", "huge"):
            ids[f"{key}/dm"] = sandbox.add_dm(TEXTS[key], author=f"dm_{key}")
            ids[f"{key}/message"] = sandbox.add_fb_message(TEXTS[key], author=AUTHORS[key])
        with Session(app_engine, expire_on_commit=False) as s:
            manager = staff(s, "Mara Manager", role=Role.MANAGER, senior=True, capacity=500, ui_language="en")
        settings = Settings(_env_file=None, database_url="sqlite://", **sandbox.settings_overrides())
        worker = Worker(app_engine, listeners=build_listeners(settings), senders=build_senders(settings),
                        scorer=LexiconScorer())  # fmt: skip
        worker.run_once()
        worker.run_once()  # a second poll finds nothing new: nothing is stored twice
        yield Pipeline(app_engine, sandbox, manager, ids)


def stored_text(sent: str, channel: str, sandbox: Sandbox) -> str:
    """What the store keeps of ``sent``: NUL and controls dropped, cut at ``MAX_TEXT`` with an ellipsis."""
    if channel == "mention" and f"@{sandbox.brand_username.lower()}" not in sent.lower():
        sent = f"@{sandbox.brand_username} {sent}"  # the sandbox's mention carries the handle
    text = clean_text(sent)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def test_every_hostile_post_is_stored_once_cleaned_scored_and_assigned(pipeline: Pipeline) -> None:
    with Session(pipeline.engine) as s:
        for key, external_id in pipeline.ids.items():
            name, channel = key.split("/")
            rows = s.execute(select(Post).where(col(Post.external_id) == external_id)).scalars().all()
            assert len(rows) == 1, key
            post = rows[0]
            assert post.text == stored_text(TEXTS[name], channel, pipeline.sandbox), key
            assert "\x00" not in post.text and "\x00" not in str(post.raw)
            score = s.execute(select(Score).where(col(Score.post_id) == post.id)).scalar_one()
            assert score.sentiment in ("negative", "neutral", "positive") and 0 <= score.urgency <= 100
            # Hostile or not, each one is a customer waiting for an answer, and it has someone.
            assert post.needs_response is True and post.status == PostStatus.ASSIGNED, (key, post.status)
            assert post.assignee_id == pipeline.manager.id
            author = s.get(Author, post.author_id)
            assert author is not None and "\x00" not in author.username + author.display_name
        # Besides them only the page's own post and our own automatic DM acknowledgements came in.
        others = s.execute(select(col(Post.kind)).where(col(Post.external_id).not_in(pipeline.ids.values())))
        assert sorted(set(others.scalars())) == ["own", "page_post"]


def _markdown_values(at: AppTest) -> list[str]:
    """Every element value or label that Streamlit renders as markdown."""
    values: list[str] = []
    for kind in ("markdown", "caption", "title", "subheader", "header", "info", "warning", "error", "success"):
        values.extend(str(el.value) for el in getattr(at, kind))
    for kind in ("button", "text_area", "text_input", "selectbox", "multiselect", "number_input", "expander"):
        values.extend(str(el.label) for el in getattr(at, kind))
    return values


def assert_inert(value: str) -> None:
    """The markdown renders to text only: no tag but paragraphs and emphasis, no link, no live markup."""
    assert "\x00" not in value and "\u202e" not in value
    # Escaped markup keeps its letters but each punctuation mark follows a backslash (``\<script``).
    assert not [live for live in LIVE if re.search(r"(?<!\\)" + re.escape(live), value)], value[:300]
    html = MARKDOWN.render(value)
    tags = {m.lower() for m in re.findall(r"</?\s*([a-zA-Z][a-zA-Z0-9]*)", html)}
    assert tags <= ALLOWED_TAGS, (tags, value[:300])


@pytest.mark.parametrize("view", ["queue.py", "inbox.py"])
def test_queue_and_inbox_show_hostile_posts_as_inert_visible_text(pipeline: Pipeline, view: str) -> None:
    at = run_view(view, pipeline.manager)
    with Session(pipeline.engine) as s:
        shown = {
            p.external_id: p
            for p in s.execute(
                select(Post).where(col(Post.needs_response).is_(True), col(Post.status) == PostStatus.ASSIGNED)
            ).scalars()
        }
        authors = {a.id: a for a in s.execute(select(Author)).scalars()}
    texts = [el.value for el in at.text]
    assert len(shown) >= 10
    for post in shown.values():
        # st.text shows exactly the visible version: controls and bidi overrides gone, the rest as typed.
        # (Streamlit's st.text strips the outer whitespace of what it is given.)
        assert plain(post.text).strip() in texts, post.text[:80]
    for value in texts:
        assert "\x00" not in value and "\u202e" not in value and "\x1b" not in value
    markdown = _markdown_values(at)
    for value in markdown:
        assert_inert(value)
    joined = " ".join(markdown)
    for post in shown.values():
        author = authors[post.author_id]
        # Names reach markdown only escaped; the escaped form is there, so the person is still named.
        for name in (author.username, author.display_name):
            if name and name.strip():
                assert md(name) in joined, name[:40]
    for area in at.text_area:
        assert "\x00" not in str(area.value)
    if view == "queue.py":
        # The confirmation before sending names the author (@handle) and shows the exact reply text.
        with Session(pipeline.engine) as s:
            post_id = s.execute(
                select(col(Post.id)).where(col(Post.external_id) == pipeline.ids["script/mention"])
            ).scalar_one()
            reply = s.execute(
                select(Reply).where(col(Reply.post_id) == post_id, col(Reply.kind) == ReplyKind.ANSWER)
            ).scalar_one()
        at.button(key=f"approve_{reply.id}").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert f"confirm_{reply.id}" in [b.key for b in at.button]
        assert plain(reply.text).strip() in [el.value for el in at.text]
        confirm = [v for v in _markdown_values(at) if md(f"@{AUTHORS['script'][:15]}") in v]
        assert confirm, "the confirmation names the author, escaped"
        for value in _markdown_values(at):
            assert_inert(value)


@pytest.mark.parametrize("view", ["trends.py", "overview.py"])
def test_trends_and_overview_render_hostile_posts_without_crashing(pipeline: Pipeline, view: str) -> None:
    at = run_view(view, pipeline.manager)
    assert at.title and not at.exception
    for value in _markdown_values(at):
        assert_inert(value)


def test_the_safe_helpers_neutralise_every_hostile_text() -> None:
    for hostile in [*TEXTS.values(), *AUTHORS.values()]:
        visible = plain(clean_text(hostile))
        assert "\x00" not in visible and "\u202e" not in visible and "\x07" not in visible
        assert_inert(md(hostile))
        # Nothing a person wrote is hidden: every letter of the visible text survives the escaping.
        letters = [ch for ch in visible if ch.isalnum()]
        assert [ch for ch in md(hostile) if ch.isalnum()] == letters
