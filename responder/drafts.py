"""Suggested replies in the post's language, from editable saved replies chosen by type and tone.

A good first answer acknowledges, apologises where it is a complaint, says who owns the case and when to
expect a resolution, and gives the next step. Variables: {greet} {name} {handle} {agent} {sla}.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from knowledge.suggest import Knowledge, knowledge_template, load_knowledge
from models.tables import SavedReply, utcnow
from networks.registry import spec_of

UPSET_P_NEGATIVE = 0.9
REPLY_TYPES = ("crisis", "complaint", "question", "praise", "other")
CARE_TYPES = ("ack", "update", "survey")
ANY = "any"

# (language, type, tone) -> text. Tone "upset" is for very negative posts; "any" is the fallback.
DEFAULT_SAVED_REPLIES: dict[tuple[str, str, str], str] = {
    ("en", "crisis", ANY): (
        "{greet}thank you for telling us. This is our priority right now: I'm {agent} and I'm handling it "
        "personally. We'll be back to you within {sla}. Please send us a direct message so we can help safely."
    ),
    ("en", "complaint", ANY): (
        "{greet}we're sorry about this. I'm {agent} and I'll look after your case; expect an answer within "
        "{sla}. Could you send us a direct message with your order or account details?"
    ),
    ("en", "complaint", "upset"): (
        "{greet}we're really sorry, this is not the experience you should have had. I'm {agent} and I own your "
        "case from now on; you'll have an answer within {sla}. Please DM us your order or account number."
    ),
    ("en", "question", ANY): (
        "{greet}thanks for your question! I'm {agent} and I'll get you an answer within {sla}. "
        "If it's about an order, a DM with its number helps."
    ),
    ("en", "praise", ANY): "{greet}thank you so much for your kind words! We've shared them with the team. — {agent}",
    ("en", "other", ANY): "{greet}thanks for reaching out. I'm {agent} and I'll get back to you within {sla}.",
    ("en", "ack", ANY): (
        "Hi{name}, we got your message. {agent} will answer within {sla}. Anything you add here reaches them."
    ),
    ("en", "update", ANY): (
        "Hi{name}, sorry, this is taking longer than we promised. {agent} is still on it and will answer within {sla}."
    ),
    ("en", "survey", ANY): (
        "Hi{name}, how did we do? Reply with a number from 1 (poor) to 5 (excellent). Thank you! — {agent}"
    ),
    ("es", "crisis", ANY): (
        "{greet}gracias por avisarnos. Es nuestra prioridad ahora mismo: soy {agent} y me ocupo en persona. "
        "Te respondemos en menos de {sla}. Escríbenos por mensaje directo para ayudarte con seguridad."
    ),
    ("es", "complaint", ANY): (
        "{greet}sentimos lo ocurrido. Soy {agent} y me encargo de tu caso; tendrás respuesta en menos de {sla}. "
        "¿Nos escribes por mensaje directo con tu número de pedido o cuenta?"
    ),
    ("es", "complaint", "upset"): (
        "{greet}sentimos mucho lo ocurrido, no es la experiencia que mereces. Soy {agent} y me encargo de tu "
        "caso desde ahora; tendrás respuesta en menos de {sla}. Escríbenos por DM con tu número de pedido."
    ),
    ("es", "question", ANY): (
        "{greet}¡gracias por tu pregunta! Soy {agent} y te respondo en menos de {sla}. "
        "Si es sobre un pedido, escríbenos por DM con su número."
    ),
    ("es", "praise", ANY): "{greet}¡muchas gracias por tus palabras! Se las hemos hecho llegar al equipo. — {agent}",
    ("es", "other", ANY): "{greet}gracias por escribirnos. Soy {agent} y te respondo en menos de {sla}.",
    ("es", "ack", ANY): (
        "Hola{name}, hemos recibido tu mensaje. {agent} te responderá en menos de {sla}. "
        "Lo que añadas aquí le llega directamente."
    ),
    ("es", "update", ANY): (
        "Hola{name}, perdona, está tardando más de lo que prometimos. {agent} sigue con tu caso y te "
        "responderá en menos de {sla}."
    ),
    ("es", "survey", ANY): (
        "Hola{name}, ¿qué tal te atendimos? Responde con un número del 1 (mal) al 5 (excelente). ¡Gracias! — {agent}"
    ),
}


@dataclass(frozen=True, slots=True)
class DraftContext:
    """What a suggested reply is built from."""

    language: str
    sentiment: str
    complaint: float
    crisis: bool
    is_question: bool
    username: str
    agent: str
    network: str
    sla_text: str
    name: str = ""
    p_negative: float = 0.0
    post_id: int | None = None
    post_text: str = ""


@dataclass(slots=True)
class SavedReplyBook:
    """The saved replies in force: the defaults overlaid with the active rows of ``savedreply``."""

    texts: dict[tuple[str, str, str, str], str] = field(
        default_factory=lambda: {(lang, t, tone, ANY): text for (lang, t, tone), text in DEFAULT_SAVED_REPLIES.items()}
    )
    # The knowledge base as the sweep found it (None when empty): a confident match answers the post.
    knowledge: Knowledge | None = None

    @classmethod
    def load(cls, session: Session) -> SavedReplyBook:
        """Read the active saved replies on top of the defaults."""
        book = cls()
        for row in session.execute(select(SavedReply).where(col(SavedReply.active).is_(True))).scalars():
            book.texts[(row.language, row.reply_type, row.tone, row.network)] = row.text
        book.knowledge = load_knowledge(session)
        return book

    def pick(self, *, language: str, reply_type: str, tone: str, network: str) -> str:
        """Choose the most specific saved reply: network, then tone, then English as the last resort."""
        lang = language if any(k[0] == language for k in self.texts) else "en"
        for key in (
            (lang, reply_type, tone, network),
            (lang, reply_type, tone, ANY),
            (lang, reply_type, ANY, network),
            (lang, reply_type, ANY, ANY),
            ("en", reply_type, ANY, ANY),
        ):
            if key in self.texts:
                return self.texts[key]
        return self.texts[("en", "other", ANY, ANY)]


class _Blank(dict[str, Any]):
    """Unknown variables in an edited saved reply render as nothing rather than failing the sweep."""

    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{variables}`` in a saved reply; a broken template is shown as written, unfilled."""
    try:
        return string.Formatter().vformat(template, (), _Blank(variables))
    except (ValueError, IndexError, AttributeError):
        return template


def reply_type(ctx: DraftContext) -> str:
    """Classify the post for the saved reply to use: crisis, complaint, question, praise or other."""
    if ctx.crisis:
        return "crisis"
    if ctx.complaint >= 0.5 or ctx.sentiment == "negative":
        return "complaint"
    if ctx.is_question:
        return "question"
    if ctx.sentiment == "positive":
        return "praise"
    return "other"


def tone(ctx: DraftContext) -> str:
    """Name the post's tone for the saved reply: upset when very negative, else calm."""
    return "upset" if ctx.crisis or ctx.p_negative >= UPSET_P_NEGATIVE else "calm"


def variables(ctx: DraftContext) -> dict[str, str]:
    """The values a saved reply may use."""
    lang = "es" if ctx.language == "es" else "en"
    greet_word = "Hola" if lang == "es" else "Hi"
    handle = ctx.username.strip().lstrip("@")
    greet = f"{greet_word} @{handle}, " if spec_of(ctx.network).greets_by_handle and handle else f"{greet_word}, "
    first = ctx.name.split()[0] if ctx.name.strip() else ""
    return {
        "greet": greet,
        "handle": f"@{handle}" if handle else "",
        "name": f" {first}" if first else "",
        "agent": ctx.agent,
        "sla": ctx.sla_text,
    }


def fit_network(text: str, network: str) -> str:
    """Cut a reply to what its network takes (X: 280 weighted characters, URLs 23, emoji 2)."""
    return spec_of(network).fit_reply(text)


def suggest_reply(ctx: DraftContext, book: SavedReplyBook | None = None, *, kind: str | None = None) -> str:
    """Build the suggested reply (or an ack/update/survey when ``kind`` says so) within the network's limit."""
    book = book or SavedReplyBook()
    chosen = kind or reply_type(ctx)
    template = book.pick(language=ctx.language, reply_type=chosen, tone=tone(ctx), network=ctx.network)
    if kind is None and book.knowledge is not None:
        template = (
            knowledge_template(
                book.knowledge, post_id=ctx.post_id, text=ctx.post_text, language=ctx.language, reply_type=chosen
            )
            or template
        )
    return fit_network(render(template, variables(ctx)).strip(), ctx.network)


def ensure_saved_replies(session: Session) -> int:
    """Store the default saved replies that have no row yet, so people can edit them; return how many."""
    existing = {(r.language, r.reply_type, r.tone, r.network) for r in session.execute(select(SavedReply)).scalars()}
    added = 0
    for (lang, kind, tone_name), text in DEFAULT_SAVED_REPLIES.items():
        if (lang, kind, tone_name, ANY) not in existing:
            session.add(SavedReply(language=lang, reply_type=kind, tone=tone_name, network=ANY, text=text))
            added += 1
    return added


def edit_saved_reply(session: Session, *, saved_reply_id: int, text: str, actor: str) -> SavedReply:
    """Change a saved reply's text; the caller checks the permission and commits."""
    row = session.get(SavedReply, saved_reply_id)
    if row is None:
        raise LookupError(f"saved reply {saved_reply_id} does not exist")
    row.text = text.strip()
    row.updated_at = utcnow()
    row.updated_by = actor[:64]
    session.add(row)
    return row


def sla_text(seconds: float, language: str) -> str:
    """Say a time span the way a customer reads it, e.g. '1 hour' or '30 minutos'."""
    minutes = max(1, round(seconds / 60))
    es = language == "es"
    if minutes < 60:
        return f"{minutes} minutos" if es else f"{minutes} minutes"
    hours = round(minutes / 60)
    if es:
        return "1 hora" if hours == 1 else f"{hours} horas"
    return "1 hour" if hours == 1 else f"{hours} hours"
