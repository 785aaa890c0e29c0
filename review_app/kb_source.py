"""The line under a suggested reply that says where its answer came from, for staff (never sent to customers)."""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from sqlmodel import Session

from knowledge.suggest import suggestion_for
from models.knowledge import KbAnswer, KbArticle
from review_app import context
from review_app.i18n import t
from review_app.safe import md

_MONTHS = {
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def day(lang: str, when: datetime | None) -> str:
    """A day as people say it: '3 dic' in Spanish, '3 Dec' in English."""
    if when is None:
        return "?"
    return f"{when.day} {_MONTHS.get(lang, _MONTHS['en'])[when.month - 1]}"


def source_line(lang: str, session: Session, *, post_id: int, reply_text: str) -> str | None:
    """Markdown for where the knowledge-base answer in this reply came from, or None when it has none."""
    found = suggestion_for(session, post_id=post_id, suggested_text=reply_text)
    if found is None:
        return None
    if found.article_id is not None:
        article = session.get(KbArticle, found.article_id)
        if article is None:
            return None
        return t(lang, "kb_source_article", title=md(article.title), id=article.id)
    if found.answer_reply_id is not None:
        answer = session.get(KbAnswer, found.answer_reply_id)
        if answer is None:
            return None
        return t(lang, "kb_source_answer", name=md(answer.sent_by.split()[0] if answer.sent_by else "?"),
                 date=day(lang, answer.sent_at))  # fmt: skip
    return None


def show_source(lang: str, *, post_id: int, reply_text: str | None) -> None:
    """Show the source line under a suggestion when its answer came from the knowledge base."""
    if not reply_text:
        return
    with Session(context.engine()) as session:
        line = source_line(lang, session, post_id=post_id, reply_text=reply_text)
    if line:
        st.caption(f":material/menu_book: {line}")
