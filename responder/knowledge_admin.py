"""Editing the knowledge base from the desk: the permission is checked here, every change is audited."""

from __future__ import annotations

from sqlmodel import Session

from knowledge.articles import ArticleDraft, save_article, set_active
from knowledge.encoder import Encoder
from models.audit import audit
from models.knowledge import KbArticle
from models.tables import Staff
from responder.permissions import Action, require


def _actor(staff: Staff) -> str:
    """How a desk change is signed in the article and the audit log."""
    return f"staff:{staff.id}"


def save_article_as(
    session: Session, *, staff: Staff, draft: ArticleDraft, encoder: Encoder | None = None
) -> KbArticle:
    """Add or replace one language's version of an article; raises ``NotAllowed`` or ``ArticleError``; commits."""
    require(staff, Action.EDIT_KNOWLEDGE)
    row = save_article(session, draft, actor=_actor(staff), encoder=encoder)
    audit(session, actor=_actor(staff), action="kb_article_saved", article_id=row.id, slug=row.slug, lang=row.language)
    session.commit()
    return row


def set_article_active_as(session: Session, *, staff: Staff, article_id: int, active: bool) -> KbArticle:
    """Retire an article (no longer suggested) or restore it; raises ``NotAllowed`` or ``LookupError``; commits."""
    require(staff, Action.EDIT_KNOWLEDGE)
    row = set_active(session, article_id=article_id, active=active, actor=_actor(staff))
    audit(session, actor=_actor(staff), action="kb_article_restored" if active else "kb_article_retired",
          article_id=article_id)  # fmt: skip
    session.commit()
    return row
