"""Every page, for every role, in each language: no catalogue key, stored code or other-language word shows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from itertools import cycle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.protobuf.json_format import MessageToDict
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from classifier.embed import load_embedder
from classifier.lexicon import COMPLAINT_CUES, CRISIS
from classifier.relevance import CHATTER_REASONS
from classifier.urgency import urgency
from models.alerts import KINDS
from models.tables import (
    Alert,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyKind,
    ReplyState,
    Role,
    SavedReply,
    Score,
    Shift,
    SlaPolicy,
    SourceCursor,
    Task,
    utcnow,
)
from responder.admin import CHANNELS, LANES
from responder.corrections import SENTIMENTS
from review_app import labels
from review_app.i18n import STRINGS, t, tn
from review_app.launch import APP
from review_app.views.lanes import TASK_FORM_KEY
from review_app.views.queue import TOOLS_KEY
from tests.support.desk import desk_engine, user
from tests.support.factories import scored_post

DESK = ("approvals.py", "submissions.py", "notifications.py")
PAGES = {
    "admin": ("queue.py", "crisis.py", "inbox.py", "tasks.py", *DESK, "trends.py", "overview.py", "admin.py"),
    "manager": ("queue.py", "crisis.py", "inbox.py", "tasks.py", *DESK, "trends.py", "overview.py"),
    "agent": ("queue.py", "crisis.py", "inbox.py", "tasks.py", "submissions.py", "notifications.py", "overview.py"),
    "marketing": ("notifications.py", "trends.py", "overview.py"),
}


def _reasons() -> list[str]:
    """Every form of reason the classifier writes, made by its own code where it has a function for it."""
    _, made = urgency(0.9, 0.9, anger=["furioso"], crisis=list(CRISIS), is_dm=True, followers=38_000, waiting_s=9000)
    _, minutes = urgency(0.6, 0.6, waiting_s=900, followers=1200)
    cues = ", ".join(label for _, _, label in COMPLAINT_CUES)
    return [
        *made,
        *minutes,
        "cues: " + cues,
        "negated: bueno",
        "question",
        f"long text: scored the first {2000:,} of {5000:,} chars",
        "untrained model heads: scores are not meaningful",
        *(f"not about us: {why}" for why in CHATTER_REASONS),
    ]


def seed_everything(engine: Engine) -> dict[str, int]:
    """A desk with posts of every kind, status and sentiment, replies in every state, and the admin's rows."""
    members = {role.value: user(engine, f"Persona {i}", role.value) for i, role in enumerate(Role)}
    agent_id = members["agent"].id
    with Session(engine, expire_on_commit=False) as s:
        kinds = [k for k in PostKind if k != PostKind.OWN]
        states = cycle(ReplyState)
        notes = cycle(["automatic ack", "automatic update", "post dismissed", "superseded: the post was reassigned"])
        reasons = _reasons()
        alert_kinds = KINDS
        first: Post | None = None
        first_hit: Post | None = None
        for i, (kind, sentiment) in enumerate((k, snt) for k in kinds for snt in SENTIMENTS):
            post = scored_post(
                s,
                kind=kind,
                sentiment=sentiment,
                language=("es", "en")[i % 2],
                crisis=i == 0,
                text=f"xq {i}",
                # Keyword hits X lets us answer only by hand: their cards show their own actions.
                manual_only=kind == PostKind.SEARCH,
            )
            first = first or post
            if kind == PostKind.SEARCH:
                first_hit = first_hit or post
            score = s.get(Score, post.id)
            assert score is not None
            score.reasons = reasons
            # A real model id (a model's name, in no language), with the heads version the refit job promoted.
            score.model_id = "escucha-e5s6-multitask-v1+heads-2"
            post.status, post.assignee_id = PostStatus.ASSIGNED, agent_id
            s.add_all([score, post])
            # Every state, each submitted by someone: the approvals, submissions and notifications pages show them.
            submitter = members[("agent", "manager", "admin")[i % 3]].id
            s.add(
                Reply(
                    post_id=post.id or 0,
                    kind=ReplyKind.ANSWER,
                    state=next(states),
                    text=f"respuesta {i} corregida",
                    suggested_text=f"respuesta {i}",
                    idempotency_key=f"k{i}",
                    note=next(notes),
                    submitted_by_id=submitter,
                    submitted_at=utcnow(),
                )
            )
            for member in members.values():
                s.add(Alert(key=f"a{i}:{member.id}", kind=alert_kinds[i % len(alert_kinds)], staff_id=member.id or 0,
                            post_id=post.id, message="too casual"))  # fmt: skip
        for status in (PostStatus.NEW, PostStatus.REPLIED, PostStatus.DISMISSED, PostStatus.ESCALATED,
                       PostStatus.NO_ACTION):  # fmt: skip
            closed = scored_post(s, text="xq cerrada")
            closed.status = status
            s.add(closed)
        unscored = scored_post(s, text="xq sin puntuar")
        score = s.get(Score, unscored.id)
        s.delete(score)
        s.add(SourceCursor(network="x", source="mentions", posts_ingested=3, requests_made=2))
        s.add(SourceCursor(network="facebook", source="feed", healthy=False, last_error="timeout"))
        s.add_all(SlaPolicy(channel=c, lane=lane, seconds=3600) for c in CHANNELS for lane in LANES)
        s.add(Shift(staff_id=agent_id or 0, weekday=2, start_minute=540, end_minute=1020))
        s.add(SavedReply(language="es", reply_type="complaint", tone="upset", network="x", text="Lo sentimos"))
        s.add(SavedReply(language="en", reply_type="ack", tone="any", network="any", text="We got it"))
        # Tasks for each person who works posts: one open and overdue, one done (My tasks shows both states).
        assert first is not None and first.id is not None
        for member in members.values():
            if member.role == Role.MARKETING:
                continue
            s.add(Task(post_id=first.id, assignee_id=member.id or 0, created_by_id=agent_id or 0, note="llamar",
                       due_at=utcnow() - timedelta(hours=1)))  # fmt: skip
            s.add(Task(post_id=first.id, assignee_id=member.id or 0, created_by_id=agent_id or 0, note="hecho",
                       due_at=utcnow() + timedelta(hours=1), done_at=utcnow(), done_by_id=member.id))  # fmt: skip
        s.commit()
        assert first is not None and first_hit is not None
        return {role: m.id or 0 for role, m in members.items()} | {
            "first_post": first.id or 0,
            "first_hit": first_hit.id or 0,
        }


# --- what a person sees ---

_DIRECTIVES = re.compile(r":[a-z]+(?:-background)?\[|:material/\w+:|\*\*")
_SHOWN_KEYS = {"label", "body", "placeholder", "options", "help", "value", "formattedValue", "title", "caption"}


def _strings(value: Any, keep: bool = False) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(inner, keep=key in _SHOWN_KEYS)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner, keep=keep)
    elif isinstance(value, str) and keep:
        yield value


def _spec_titles(spec: Any) -> Iterator[str]:
    if isinstance(spec, dict):
        for key, inner in spec.items():
            if key == "title" and isinstance(inner, str):
                yield inner
            elif key != "config":  # the locale lists every month and day name, shown or not
                yield from _spec_titles(inner)
    elif isinstance(spec, list):
        for inner in spec:
            yield from _spec_titles(inner)


def _arrow_strings(data: bytes) -> Iterator[str]:
    """The text cells of a chart's data (its column names are field names, never drawn)."""
    table = pa.ipc.open_stream(data).read_all()
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            yield from (v for v in column.to_pylist() if isinstance(v, str))


def shown_text(node: Any) -> list[str]:
    """Return the words a person sees on the page: labels, options, captions, table cells and chart titles.

    Post texts and reply texts (``st.text``, text areas, the approvals diff) are the customers' and the team's
    words, left out.
    """
    out: list[str] = []
    kind = getattr(node, "type", "")
    children = getattr(node, "children", None)
    # The approvals page's diff (``st.html``) is made of the reply texts too: the team's words, escaped.
    if kind in ("text", "text_area", "html"):
        return out
    proto = getattr(node, "proto", None)
    if kind == "dataframe":
        table = node.value
        out.extend(str(c) for c in table.columns)
        out.extend(v for column in table.columns for v in table[column] if isinstance(v, str))
    elif kind == "vega_lite_chart" and proto is not None:
        out.extend(_spec_titles(json.loads(proto.spec)))
        out.extend(s for dataset in proto.datasets for s in _arrow_strings(dataset.data.data))
        if proto.data.data:
            out.extend(_arrow_strings(proto.data.data))
    elif proto is not None and hasattr(proto, "DESCRIPTOR"):
        shown = MessageToDict(proto)
        shown.pop("arrowDataFrame", None)
        out.extend(_strings(shown))
    if isinstance(children, dict):
        for child in children.values():
            out.extend(shown_text(child))
    # Markdown escapes (``0\\.90``) are not what a person reads.
    return [re.sub(r"\\(.)", r"\1", _DIRECTIVES.sub("", s)) for s in out]


def _raw_codes() -> set[str]:
    """Stored codes with an underscore: never words, in either language."""
    codes = {code for _, code in labels.CODES if "_" in code}
    return codes | {key for key in STRINGS["en"] if "_" in key}


def _only_in(lang: str) -> set[str]:
    """Words and phrases of ``lang`` that the other language writes differently."""
    i, other = (0, 1) if lang == "es" else (1, 0)
    pairs = [*labels.CODES.values(), *labels.CUES.values(), *labels.CRISIS.values(), *labels.NOTES.values()]
    found = {p[i] for p in pairs if p[i] != p[other]}
    found |= {STRINGS[lang][k] for k in STRINGS[lang] if STRINGS[lang][k] != STRINGS["es" if lang == "en" else "en"][k]}
    # Templates: the fixed words before the first value.
    return {w.split("{")[0].strip(" :·") for w in found if len(w.split("{")[0].strip(" :·")) > 2}


# Streamlit's own English, shown when a widget or page is given no words of ours.
STREAMLIT_ENGLISH = {"Choose options", "Choose an option", "No results", "Page not found"}


def offenders(texts: list[str], lang: str) -> list[tuple[str, str]]:
    """Return (word, where) for every raw code, and every word of the other language, in ``texts``."""
    foreign = _only_in("en" if lang == "es" else "es") - _only_in(lang)
    if lang == "es":
        foreign |= STREAMLIT_ENGLISH
    bad: list[tuple[str, str]] = []
    # The language switch names both languages on purpose, so that anyone can find it; the admin's staff form
    # takes channel and language codes as typed text, and its labels show the codes to type.
    meant = {"Idioma · Language", t(lang, "admin_channels"), t(lang, "admin_languages")}
    for text in (x for x in texts if x not in meant):
        for word in _raw_codes() | foreign:
            if re.search(rf"(?<![\w@.]){re.escape(word)}(?![\w@])", text):
                bad.append((word, text[:120]))
    return bad


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's engine on a fresh SQLite file."""
    yield from desk_engine(tmp_path, monkeypatch)


def _page_texts(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return shown_text(at._tree)


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("role", list(PAGES))
def test_every_page_speaks_only_the_chosen_language(app_engine: Engine, role: str, lang: str) -> None:
    ids = seed_everything(app_engine)
    load_embedder()  # once per process, as in the app: the trends page's themes use it
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state["staff_id"] = ids[role]
    at.session_state["lang"] = lang
    # One card's extra tools open, so their widgets are rendered too.
    at.session_state[TOOLS_KEY] = ids["first_post"]
    # A keyword hit's task form open, so its widgets are rendered too.
    at.session_state[TASK_FORM_KEY] = ids["first_hit"]
    at.run()
    problems: dict[str, list[tuple[str, str]]] = {}
    seen = 0
    for view in PAGES[role]:
        at.switch_page(f"views/{view}").run()
        texts = _page_texts(at)
        seen += len(texts)
        found = offenders(texts, lang)
        if found:
            problems[view] = sorted({word: where for word, where in found}.items())
    assert seen > 50
    assert not problems, problems


def test_the_checker_catches_raw_codes_and_the_other_language() -> None:
    assert offenders(["Estado: pending_approval"], "es")
    assert offenders(["Sentimiento: negative"], "es")
    assert offenders(["Reasons: anger words: x"], "es")
    assert offenders(["Sentiment: negativo"], "en")
    assert offenders(["Choose options"], "es")
    assert not offenders(["Sentimiento: negativo · queja 0,87"], "es")


def test_every_reason_the_classifier_writes_has_words_in_both_languages() -> None:
    for text in _reasons():
        assert labels.reason("es", text) != text or labels.reason("en", text) == text, text
        assert not offenders([labels.reason("es", text)], "es"), text
        assert not offenders([labels.reason("en", text)], "en"), text
    assert labels.reason("es", "waiting 2.5 h") == "esperando 2,5 h"
    assert labels.reason("en", "cues: reembolso, not received") == "cues: refund, not received"
    assert labels.reason("es", "crisis: legal threat") == "crisis: amenaza legal"


def test_plural_forms() -> None:
    assert tn("es", "spikes", 1) == "1 pico marcado."
    assert tn("es", "spikes", 2) == "2 picos marcados."
    assert tn("en", "spikes", 1) == "1 spike flagged."
    assert tn("en", "spikes", 2) == "2 spikes flagged."
    assert t("es", "spikes_other", n=3).startswith("3 picos")
