"""Suggested replies in the post's language, from editable saved replies chosen by type and tone.

A good first answer acknowledges, apologises where it is a complaint, says who owns the case and when to
expect a resolution (the forecast of ``responder.forecast``, never the SLA target), and gives the next step.
Variables: {greet} {name} {handle} {agent} {owner} {promise} {promise_time} {sla} {order} {about_order}
{next_step}. The text is built from parts (``suggestion_parts`` then ``compose``) and then made to fit the
channel and the network (``fit_channel``): no request for a DM in a private conversation, a greeting by name
or a neutral one, the network's length.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from knowledge.suggest import ANSWERED_TYPES, Knowledge, knowledge_template, load_knowledge
from models.tables import SavedReply, utcnow
from networks.registry import spec_of
from responder.forecast import duration_words

UPSET_P_NEGATIVE = 0.9
REPLY_TYPES = ("crisis", "complaint", "question", "praise", "other")
CARE_TYPES = ("ack", "update", "survey", "promoter")
ANY = "any"

# (language, type, tone) -> text. Tone "upset" is for very negative posts; "any" is the fallback.
# {promise} is the forecast in words ("within 2 hours", "mañana por la mañana"); {next_step} asks for details in a
# way that fits the channel (a DM from a public thread, right here in a private conversation).
DEFAULT_SAVED_REPLIES: dict[tuple[str, str, str], str] = {
    ("en", "crisis", ANY): (
        "{greet}thank you for telling us. This is our priority right now: I'm {agent} and I'm handling it "
        "personally. We'll be back to you {promise}.{next_step}"
    ),
    ("en", "complaint", ANY): (
        "{greet}we're sorry about this. I'm {agent} and I'll look after your case{about_order}; expect an answer "
        "{promise}.{next_step}"
    ),
    ("en", "complaint", "upset"): (
        "{greet}we're really sorry, this is not the experience you should have had. I'm {agent} and I own your "
        "case{about_order} from now on; you'll have an answer {promise}.{next_step}"
    ),
    ("en", "question", ANY): (
        "{greet}thanks for your question! I'm {agent} and I'll get you an answer {promise}.{next_step}"
    ),
    ("en", "praise", ANY): "{greet}thank you so much for your kind words! We've shared them with the team. — {agent}",
    ("en", "other", ANY): "{greet}thanks for reaching out. I'm {agent} and I'll get back to you {promise}.",
    ("en", "ack", ANY): (
        "{greet}we got your message{about_order}. {agent} will answer {promise}. Anything you add here reaches them."
    ),
    ("en", "update", ANY): (
        "{greet}sorry, this is taking longer than we promised. {agent} is still on it and will answer {promise}."
    ),
    ("en", "survey", ANY): (
        "{greet}how did we do? Reply with a number from 1 (poor) to 5 (excellent), and a comment if you like. "
        "Thank you! — {agent}"
    ),
    ("en", "promoter", ANY): (
        "{greet}how likely are you to recommend us to a friend? Reply with a number from 0 (not at all) to 10 "
        "(certainly), and a comment if you like. Thank you! — {agent}"
    ),
    ("es", "crisis", ANY): (
        "{greet}gracias por avisarnos. Es nuestra prioridad ahora mismo: soy {agent} y me ocupo en persona. "
        "Te respondemos {promise}.{next_step}"
    ),
    ("es", "complaint", ANY): (
        "{greet}sentimos lo ocurrido. Soy {agent} y me encargo de tu caso{about_order}; tendrás respuesta "
        "{promise}.{next_step}"
    ),
    ("es", "complaint", "upset"): (
        "{greet}sentimos mucho lo ocurrido, no es la experiencia que mereces. Soy {agent} y me encargo de tu "
        "caso{about_order} desde ahora; tendrás respuesta {promise}.{next_step}"
    ),
    ("es", "question", ANY): "{greet}¡gracias por tu pregunta! Soy {agent} y te respondo {promise}.{next_step}",
    ("es", "praise", ANY): "{greet}¡muchas gracias por tus palabras! Se las hemos hecho llegar al equipo. — {agent}",
    ("es", "other", ANY): "{greet}gracias por escribirnos. Soy {agent} y te respondo {promise}.",
    ("es", "ack", ANY): (
        "{greet}hemos recibido tu mensaje{about_order}. {agent} te responderá {promise}. "
        "Lo que añadas aquí le llega directamente."
    ),
    ("es", "update", ANY): (
        "{greet}perdona, está tardando más de lo que prometimos. {agent} sigue con tu caso y te responderá {promise}."
    ),
    ("es", "survey", ANY): (
        "{greet}¿qué tal te atendimos? Responde con un número del 1 (mal) al 5 (excelente) y, si quieres, un "
        "comentario. ¡Gracias! — {agent}"
    ),
    ("es", "promoter", ANY): (
        "{greet}¿con qué probabilidad nos recomendarías a un amigo? Responde con un número del 0 (nada) al 10 "
        "(seguro) y, si quieres, un comentario. ¡Gracias! — {agent}"
    ),
}

# {next_step}: how the customer gives us what we need, by channel and by whether we already have an order number.
NEXT_STEPS: dict[tuple[str, str, bool], str] = {
    ("en", "public", False): " Could you send us a direct message with your order or account details?",
    ("en", "public", True): " Please send us a direct message so we can look at it without your details in public.",
    ("en", "private", False): " Could you tell us your order or account number here?",
    ("en", "private", True): "",
    ("es", "public", False): " ¿Nos escribes por mensaje directo con tu número de pedido o cuenta?",
    ("es", "public", True): " Escríbenos por mensaje directo y lo revisamos sin exponer tus datos en público.",
    ("es", "private", False): " ¿Nos dices aquí tu número de pedido o de cuenta?",
    ("es", "private", True): "",
}
NEUTRAL_GREETING = {"en": "Hi there, ", "es": "Buenas, "}
# An edited saved reply that still says "Hi{name}," renders a bare "Hi," when there is no name.
BARE_GREETING = re.compile(r"^(?:Hi|Hello|Hola)\s*,\s*", re.IGNORECASE)
# A sentence asking to move to a DM: "send us a DM", "direct message", "escríbenos por privado", "MD"...
DM_REQUEST = re.compile(
    r"\b(?:DMs?|MDs?|direct message|private message|message us privately|inbox)\b"
    r"|mensaje (?:directo|privado)|\bpor (?:privado|interno|DM|MD)\b",
    re.IGNORECASE,
)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
# "#5521", "order 12345", "pedido nº 12345", "case AB-778", "ticket 99": a number a customer gives us.
ORDER_PATTERN = re.compile(
    r"(?:\b(?:order|pedido|orden|compra|case|caso|ticket|incidencia|reference|referencia|ref)\b\.?\s*"
    r"(?:n(?:[º°o]|um(?:ber|ero|\.)?)\.?\s*)?(?:#\s*)?(?P<number>[A-Z]{0,3}-?\d{3,12})\b)"
    r"|(?:#(?P<hash>\d{3,12})\b)",
    re.IGNORECASE,
)


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
    # The promise as a length ("2 hours"), for saved replies that say "within {sla}".
    sla_text: str
    name: str = ""
    p_negative: float = 0.0
    post_id: int | None = None
    # The promise in words ("within 2 hours", "mañana por la mañana"); empty: "within {sla_text}".
    promise: str = ""
    # The promised time as staff and customer read it on a clock ("14:30"), in the owner's time zone.
    promise_time: str = ""
    # A DM or Messenger conversation: never ask for a DM there.
    private: bool = False
    # The post's own text, where an order or case number is looked for.
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


def is_question(text: str) -> bool:
    """Whether a post asks something, as its suggested reply reads it (the scoring batch's vectors follow this too)."""
    return "?" in text


def draws_on_knowledge(*, text: str, crisis: bool, complaint: float, sentiment: str) -> bool:
    """Whether the reply drafted for a post with these scores may carry a knowledge-base answer (its reply type)."""
    kind = post_type(crisis=crisis, complaint=complaint, sentiment=sentiment, is_question=is_question(text))
    return kind in ANSWERED_TYPES


def reply_type(ctx: DraftContext) -> str:
    """Classify the post for the saved reply to use: crisis, complaint, question, praise or other."""
    return post_type(crisis=ctx.crisis, complaint=ctx.complaint, sentiment=ctx.sentiment, is_question=ctx.is_question)


def post_type(*, crisis: bool, complaint: float, sentiment: str, is_question: bool) -> str:
    """The reply type of a post from its scores: crisis, complaint, question, praise or other."""
    if crisis:
        return "crisis"
    if complaint >= 0.5 or sentiment == "negative":
        return "complaint"
    if is_question:
        return "question"
    if sentiment == "positive":
        return "praise"
    return "other"


def tone(ctx: DraftContext) -> str:
    """Name the post's tone for the saved reply: upset when very negative, else calm."""
    return "upset" if ctx.crisis or ctx.p_negative >= UPSET_P_NEGATIVE else "calm"


def greeting_name(display_name: str, username: str = "") -> str:
    """The first name to greet someone by, or "" when the display name is a handle (``Carlos_Mx64``) or no name."""
    name = " ".join(display_name.split())
    if not name or any(ch.isdigit() or ch in "_@#/\\" for ch in name):
        return ""
    squash = "".join(ch for ch in name.casefold() if ch.isalpha())
    if username and squash == "".join(ch for ch in username.casefold() if ch.isalpha()):
        return ""  # "Jen Smith" made from the handle jen_smith by the network, not a name the person gave
    first = name.split()[0]
    letters = first.replace("-", "").replace("'", "").replace(".", "")
    return first if len(letters) >= 2 and letters.isalpha() else ""


def find_order(text: str) -> str:
    """The order or case number a customer wrote ('#5521', 'pedido 12345', 'case AB-778'), or ""."""
    match = ORDER_PATTERN.search(text or "")
    if match is None:
        return ""
    return "#" + (match.group("number") or match.group("hash"))


def variables(ctx: DraftContext) -> dict[str, str]:
    """The values a saved reply may use."""
    lang = "es" if ctx.language == "es" else "en"
    greet_word = "Hola" if lang == "es" else "Hi"
    handle = ctx.username.strip().lstrip("@")
    first = greeting_name(ctx.name, handle)
    # By name, never by a raw handle; a neutral greeting when there is no name (never a bare "Hi,").
    greet = f"{greet_word} {first}, " if first else NEUTRAL_GREETING[lang]
    order = find_order(ctx.post_text)
    channel = "private" if ctx.private else "public"
    promise = ctx.promise or (f"en menos de {ctx.sla_text}" if lang == "es" else f"within {ctx.sla_text}")
    about = {"en": f" about order {order}", "es": f" sobre el pedido {order}"}[lang] if order else ""
    return {
        "greet": greet,
        "handle": f"@{handle}" if handle else "",
        "name": f" {first}" if first else "",
        "agent": ctx.agent,
        "owner": ctx.agent,
        "sla": ctx.sla_text,
        "promise": promise,
        "promise_time": ctx.promise_time,
        "order": order,
        "about_order": about,
        "next_step": NEXT_STEPS[(lang, channel, bool(order))],
    }


def fit_network(text: str, network: str) -> str:
    """Cut a reply to what its network takes (X: 280 weighted characters, URLs 23, emoji 2)."""
    return spec_of(network).fit_reply(text)


def drop_dm_requests(text: str) -> str:
    """Remove the sentences that ask for a DM (for a private conversation, where that request makes no sense)."""
    sentences = SENTENCE_SPLIT.split(text.strip())
    kept = [s for s in sentences if not DM_REQUEST.search(s)]
    return " ".join(kept) if kept else text


def asks_for_dm(text: str) -> bool:
    """Whether a reply asks the customer to write to us by direct or private message."""
    return bool(DM_REQUEST.search(text))


def fit_channel(text: str, ctx: DraftContext) -> str:
    """Make a rendered reply fit its channel and network: no DM request in a DM, no bare greeting, the limit."""
    lang = "es" if ctx.language == "es" else "en"
    text = BARE_GREETING.sub(NEUTRAL_GREETING[lang], text.strip(), count=1)
    if ctx.private:
        text = drop_dm_requests(text)
    spec = spec_of(ctx.network)
    limit = spec.limit_for(private=ctx.private)
    text = spec.fit_reply(text)
    if spec.reply_length(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text


def suggestion_parts(ctx: DraftContext, book: SavedReplyBook, *, kind: str | None = None) -> list[str]:
    """The parts a suggestion is made of, in order: today the saved reply for the post's type and tone.

    Further parts (an answer found in the knowledge base) join this list, so the text stays one function.
    """
    chosen = kind or reply_type(ctx)
    template = book.pick(language=ctx.language, reply_type=chosen, tone=tone(ctx), network=ctx.network)
    if kind is None and book.knowledge is not None:
        # A confident match in the manuals or our past answers replaces the saved reply's words (knowledge/).
        template = (
            knowledge_template(
                book.knowledge, post_id=ctx.post_id, text=ctx.post_text, language=ctx.language, reply_type=chosen
            )
            or template
        )
    return [render(template, variables(ctx)).strip()]


def compose(parts: list[str]) -> str:
    """Join the non-empty parts of a suggestion into one text."""
    return " ".join(p for p in (part.strip() for part in parts) if p)


def suggest_reply(ctx: DraftContext, book: SavedReplyBook | None = None, *, kind: str | None = None) -> str:
    """Build the suggested reply (or an ack/update/survey when ``kind`` says so) fit for its channel and network."""
    book = book or SavedReplyBook()
    return fit_channel(compose(suggestion_parts(ctx, book, kind=kind)), ctx)


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
    """Say a time span the way a customer reads it, e.g. '1 hour' or '30 minutos' (plurals right in both)."""
    return duration_words(seconds, language)
