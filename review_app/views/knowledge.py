"""The knowledge base: articles and canned answers in Spanish and English, added, edited and retired by managers
and admins; a box to try a question and see which articles the system would choose. Changes go through
``responder.knowledge_admin``."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from knowledge.articles import KINDS, LANGUAGES, ArticleDraft, list_articles
from knowledge.ranking import CONFIDENT_ARTICLE
from knowledge.suggest import load_knowledge
from models.knowledge import KbArticle
from responder.knowledge_admin import save_article_as, set_article_active_as
from responder.permissions import Action
from review_app import context
from review_app.i18n import t
from review_app.labels import code, formatter, number
from review_app.safe import md, plain, shorten

PICK_KEY = "kb_pick"
NEW = 0
FIELDS = ("kb_f_slug", "kb_f_language", "kb_f_kind", "kb_f_title", "kb_f_answer", "kb_f_questions", "kb_f_body")


def _save() -> None:
    s = st.session_state
    draft = ArticleDraft(
        slug=str(s.get("kb_f_slug", "")),
        language=str(s.get("kb_f_language", "es")),
        kind=str(s.get("kb_f_kind", "article")),
        title=str(s.get("kb_f_title", "")),
        answer=str(s.get("kb_f_answer", "")),
        questions=str(s.get("kb_f_questions", "")).splitlines(),
        body=str(s.get("kb_f_body", "")),
    )
    context.save_as_me(lambda session, me: save_article_as(session, staff=me, draft=draft))


def _set_active(article_id: int, active: bool) -> None:
    context.save_as_me(
        lambda session, me: set_article_active_as(session, staff=me, article_id=article_id, active=active)
    )


def _load_into_form(rows: dict[int, KbArticle]) -> None:
    """Fill the form with the picked article (or empty it for a new one) when the pick changes."""
    row = rows.get(int(st.session_state.get(PICK_KEY, NEW)))
    values = (
        (row.slug, row.language, row.kind, row.title, row.answer, row.questions, row.body)
        if row is not None
        else ("", "es", "article", "", "", "", "")
    )
    for key, value in zip(FIELDS, values, strict=True):
        st.session_state[key] = value


def _list(lang: str, rows: list[KbArticle]) -> None:
    st.subheader(t(lang, "kb_list"))
    if not rows:
        st.caption(t(lang, "kb_empty"))
        return
    # A dataframe shows cells as text: an article's own markup stays inert.
    st.dataframe(
        [
            {
                t(lang, "kb_col_id"): row.id,
                t(lang, "kb_col_slug"): plain(row.slug),
                t(lang, "kb_col_language"): code(lang, "language", row.language),
                t(lang, "kb_col_kind"): code(lang, "article_kind", row.kind),
                t(lang, "kb_col_title"): plain(row.title),
                t(lang, "kb_col_answer"): shorten(plain(row.answer), 120),
                t(lang, "kb_col_active"): "✓" if row.active else "—",
            }
            for row in rows
        ],
        hide_index=True,
        width="stretch",
    )


def _form(lang: str, rows: list[KbArticle]) -> None:
    st.subheader(t(lang, "kb_edit"))
    by_id = {row.id: row for row in rows if row.id is not None}
    labels = {NEW: t(lang, "kb_new")} | {
        i: f"{i} · {plain(r.slug)} · {code(lang, 'language', r.language)} · {shorten(plain(r.title), 60)}"
        for i, r in by_id.items()
    }
    if FIELDS[0] not in st.session_state:
        _load_into_form(by_id)
    picked = st.selectbox(
        t(lang, "kb_pick"),
        options=list(labels),
        format_func=lambda i: labels.get(i, str(i)),
        key=PICK_KEY,
        on_change=_load_into_form,
        args=(by_id,),
    )
    left, middle, right = st.columns(3)
    left.text_input(t(lang, "kb_slug"), key="kb_f_slug", max_chars=64)
    middle.selectbox(t(lang, "kb_language"), options=list(LANGUAGES), format_func=formatter(lang, "language"),
                     key="kb_f_language")  # fmt: skip
    right.selectbox(t(lang, "kb_kind"), options=list(KINDS), format_func=formatter(lang, "article_kind"),
                    key="kb_f_kind")  # fmt: skip
    st.text_input(t(lang, "kb_field_title"), key="kb_f_title", max_chars=255)
    st.text_area(t(lang, "kb_answer"), key="kb_f_answer", height=90)
    st.text_area(t(lang, "kb_questions"), key="kb_f_questions", height=110)
    st.text_area(t(lang, "kb_body"), key="kb_f_body", height=140)
    save, toggle = st.columns([1, 4])
    save.button(t(lang, "kb_save"), key="kb_save", type="primary", on_click=_save)
    chosen = by_id.get(int(picked)) if picked else None
    if chosen is not None and chosen.id is not None:
        label = "kb_retire" if chosen.active else "kb_restore"
        toggle.button(t(lang, label), key="kb_toggle", on_click=_set_active, args=(chosen.id, not chosen.active))


def _try(lang: str, session: Session) -> None:
    st.subheader(t(lang, "kb_try"))
    question = st.text_input(t(lang, "kb_try"), key="kb_try_text", help=t(lang, "kb_try_help"),
                             label_visibility="collapsed", max_chars=2000)  # fmt: skip
    if not question.strip():
        st.caption(t(lang, "kb_try_help"))
        return
    knowledge = load_knowledge(session)
    if knowledge is None:
        st.caption(t(lang, "kb_empty"))
        return
    for hit in knowledge.find(question, language=lang).articles:
        verdict = t(lang, "kb_confident" if hit.score >= CONFIDENT_ARTICLE else "kb_not_confident")
        line = t(
            lang, "kb_match", title=md(hit.article.title), id=hit.article.id, score=number(lang, f"{hit.score:.3f}")
        )
        st.markdown(f"- {line} · {verdict}")


def render() -> None:
    """Render the knowledge-base page."""
    lang = context.lang()
    st.title(t(lang, "page_knowledge"))
    context.show_flashes()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.EDIT_KNOWLEDGE, refused="kb_not_allowed")
        if me is None:
            return
        st.caption(t(lang, "kb_intro"))
        rows = list_articles(session)
        _list(lang, rows)
        _form(lang, rows)
        _try(lang, session)


if __name__ == "__main__":
    render()
