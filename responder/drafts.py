"""Suggested replies in the post's language: acknowledge, apologise, say who owns it and when."""

from __future__ import annotations

from dataclasses import dataclass

X_MAX_CHARS = 280

_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "crisis": (
            "{greet}thank you for telling us. This is our priority right now: I'm {agent} and I'm handling it "
            "personally. We'll be back to you within {sla}. Please send us a direct message so we can help safely."
        ),
        "complaint": (
            "{greet}we're really sorry about this. I'm {agent} and I'll look after your case; expect an answer "
            "within {sla}. Could you send us a direct message with your order or account details?"
        ),
        "question": ("{greet}thanks for your question! I'm {agent} and I'll get you an answer within {sla}."),
        "praise": "{greet}thank you so much for your kind words! We've shared them with the team. — {agent}",
        "other": "{greet}thanks for reaching out. I'm {agent} and I'll get back to you within {sla}.",
    },
    "es": {
        "crisis": (
            "{greet}gracias por avisarnos. Es nuestra prioridad ahora mismo: soy {agent} y me ocupo en persona. "
            "Te respondemos en menos de {sla}. Escríbenos por mensaje directo para ayudarte con seguridad."
        ),
        "complaint": (
            "{greet}sentimos mucho lo ocurrido. Soy {agent} y me encargo de tu caso; tendrás respuesta en menos "
            "de {sla}. ¿Nos escribes por mensaje directo con tu número de pedido o cuenta?"
        ),
        "question": "{greet}¡gracias por tu pregunta! Soy {agent} y te respondo en menos de {sla}.",
        "praise": "{greet}¡muchas gracias por tus palabras! Se las hemos hecho llegar al equipo. — {agent}",
        "other": "{greet}gracias por escribirnos. Soy {agent} y te respondo en menos de {sla}.",
    },
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


def suggest_reply(ctx: DraftContext) -> str:
    """Build the suggested reply text for a post, within the network's length limit."""
    lang = ctx.language if ctx.language in _TEMPLATES else "en"
    greet_word = "Hola" if lang == "es" else "Hi"
    handle = ctx.username.strip().lstrip("@")
    greet = f"{greet_word} @{handle}, " if ctx.network == "x" and handle else f"{greet_word}, "
    text = _TEMPLATES[lang][reply_type(ctx)].format(greet=greet, agent=ctx.agent, sla=ctx.sla_text)
    if ctx.network == "x" and len(text) > X_MAX_CHARS:
        text = text[: X_MAX_CHARS - 1].rstrip() + "…"
    return text


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
