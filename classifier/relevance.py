"""Relevance: is a keyword hit a post for the brand, or chatter that merely contains the keyword?

Mentions, comments under our posts, visitor posts and DMs are addressed to the brand by definition. A
keyword-search hit is not: "Just Cause 2" matches a search for "cause", "claro que sí" one for "Claro", and
"Amazon rainforest" one for "Amazon". Such chatter sat at urgency ~50 in the queue. The rule below keeps a hit
for the brand only when the keyword is used as the brand's name *and* the post aims something at the brand (a
question, a complaint, praise, a request, second person); otherwise it goes to a low lane with the reason.

Only signals that carry over to data we have never seen are used: where the keyword sits (a handle or hashtag,
the whole brand phrase, inside a longer name or title, a common word in lower case), second person and
requests, question and complaint cues from the lexicon, the complaint head's probability and the crisis lane.
Nothing here was fitted to a data set; ``data/relevance/`` holds the hand-labelled posts it is measured on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from classifier.lexicon import fold

# Why a hit is chatter: stored in the score's reasons as "not about us: <code>" and translated by the desk.
NO_KEYWORD = "keyword not in the text"
INSIDE_PHRASE = "keyword inside another name"
COMMON_WORD = "keyword used as an ordinary word"
NOT_AIMED = "nothing aimed at us"
CHATTER_REASONS = (NO_KEYWORD, INSIDE_PHRASE, COMMON_WORD, NOT_AIMED)
REASON_PREFIX = "not about us: "
# Urgency a chatter post keeps at most: below every real lane, so it sinks under posts for the brand.
CHATTER_URGENCY = 5

# The words of an X search query that are operators, not the brand (``lang:es``, ``-is:retweet``, ``OR``).
_OPERATOR = re.compile(r"^(?:-|\w+:)|^(?:or|and)$", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]+)"')


# Words that follow a brand name and belong to it ("Escucha Help", "Claro Soporte"): not another name.
def _folded_words(spec: str) -> frozenset[str]:
    """A prose word list (kept as one string so it stays readable), folded."""
    return frozenset(fold(w) for w in spec.split())


_BRAND_SUFFIXES = _folded_words(
    """help support care app store shop oficial official soporte ayuda tienda atencion atención cliente
    clientes service servicio team equipo es mx us uk"""
)
# Second person and requests aimed at someone (the brand, once its name is used as a name).
_SECOND_PERSON = re.compile(
    r"\b(?:you|your|yours|u|ur|y'?all|ustedes|vosotros|vosotras|os|les|su servicio|sus servicios|"
    r"tu (?:app|servicio|tienda|web|pagina)|vuestr[oa]s?|"
    r"(?:ayuden|ayudenme|ayudame|respondan|contesten|arreglen|solucionen|devuelvan|expliquen|digan|"
    r"podrian|pueden|podeis|sabeis|saben|tienen|teneis|hacen|haceis|dejen|den)\b|"
    r"please|pls|plz|por favor|porfa)\b"
)
# A customer's relationship with the brand: what a person who buys from us writes about.
_CUSTOMER = re.compile(
    r"\b(?:my|our) (?:\w+ )?(?:order|account|bill|refund|package|parcel|delivery|card|subscription|phone|plan|"
    r"purchase|internet|service|line|router|payment|app)\b|customer (?:service|support|care)|"
    r"\b(?:mi|mis|nuestro|nuestra) (?:pedido|cuenta|factura|reembolso|paquete|envio|tarjeta|suscripcion|"
    r"telefono|movil|celular|plan|compra|internet|servicio|linea|router|pago|app|contrato)\b|"
    r"atencion al cliente|servicio al cliente|servicio tecnico|lost my|me perdio|me perdieron|"
    r"need help|help me|necesito ayuda|ayudenme|ayudame"
)
# Praise or blame whose subject is a name: "love Escucha", "Escucha is the best", "gracias Escucha".
_VERDICT = re.compile(
    r"\b(?:love|loving|hate|thanks?|thank you|best|worst|great|awful|terrible|amazing|recommend|"
    r"gracias|encanta|amo|odio|mejor|peor|genial|pesimo|pesima|recomiendo|fatal|excelente|horrible)\b"
)
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|$)")
_LEADING_HANDLES = re.compile(r"^(?:\s*@\w+[:,]?)+\s*")
# A negative post whose subject is the brand's name is a complaint however it is worded.
NEGATIVE_ABOUT = 0.6
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True, slots=True)
class Relevance:
    """Whether a post is for the brand; ``reason`` names why not, ``signals`` what said it is."""

    for_brand: bool
    reason: str = ""
    signals: list[str] = field(default_factory=list)

    @property
    def reason_text(self) -> str:
        """The reason as the score stores it ("not about us: …"), or "" for a post for the brand."""
        return f"{REASON_PREFIX}{self.reason}" if self.reason else ""


def query_terms(query: str) -> list[str]:
    """The brand terms in an X search query: quoted phrases whole, then the other plain words."""
    phrases = [p.strip() for p in _QUOTED.findall(query) if p.strip()]
    rest = _QUOTED.sub(" ", query).replace("(", " ").replace(")", " ")
    words = [w for w in rest.split() if not _OPERATOR.search(w)]
    return phrases + words


def brand_terms(terms: Sequence[str]) -> list[str]:
    """Normalise configured brand terms (handles without "@", search queries split); longest first, no repeats."""
    out: list[str] = []
    for term in terms:
        for part in query_terms(term):
            part = part.lstrip("@#").strip()
            if len(part) >= 2 and fold(part) not in (fold(t) for t in out):
                out.append(part)
    return sorted(out, key=len, reverse=True)


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    kind: str  # handle, hashtag, phrase, name, inside, common


def _complains(text: str, cues: Sequence[str], complaint: float, negative: float) -> bool:
    """A complaint, a negative post or a customer's words: enough to make a keyword inside a longer name ours."""
    return bool(cues) or complaint >= 0.5 or negative >= NEGATIVE_ABOUT or bool(_CUSTOMER.search(fold(text)))


def _opens_with(text: str, named: Sequence[_Hit]) -> bool:
    """Whether the post opens with the brand's name (after any leading handles): it speaks to the brand."""
    lead = len(text) - len(_LEADING_HANDLES.sub("", text, count=1))
    return any(len(_WORD.findall(text[lead : h.start])) <= 2 for h in named)


def _question_about(text: str, named: Sequence[_Hit], question: bool) -> bool:
    """Whether a question sentence of the post holds the brand's name."""
    for m in _SENTENCE.finditer(text):
        if ("?" in m.group(0) or "¿" in m.group(0)) and any(m.start() <= h.start < m.end() for h in named):
            return True
    return question and len(_SENTENCE.findall(text)) <= 1


def _classify_hit(text: str, start: int, end: int, term: str) -> str:
    """How one occurrence of a brand term is used in ``text``."""
    before = text[:start]
    after = text[end:]
    if before.endswith("@"):
        return "handle"
    if before.endswith("#"):
        return "hashtag"
    if re.match(r"\s*(?:\d|[ivx]+\b)", after, re.IGNORECASE):
        return "inside"  # a title with a number: "Just Cause 2", "Apple II"
    next_word = _WORD.match(after.lstrip(" "))
    prev_words = _WORD.findall(before[-40:])
    prev_word = prev_words[-1] if prev_words else ""
    sentence_start = not before.strip() or bool(re.search(r"[.!?¡¿:\n]\s*$", before))
    # Another capitalised word glued to the term makes a longer name ("Amazon Rainforest", "Sun Microsystems"),
    # unless it is the brand's own suffix ("Escucha Help") or the first word of a sentence.
    glued = next_word.group(0) if next_word and after[:1] == " " else ""
    if glued[:1].isupper() and not glued.isupper() and fold(glued) not in _BRAND_SUFFIXES:
        return "inside"
    # ...or a capitalised word just before it, unless that word opens a sentence or clause ("Stage? C'mon Samsung").
    after_name = prev_word[:1].isupper() and not sentence_start and before.endswith(" ") and len(prev_words) > 1
    if after_name and not re.search(r"[.!?¡¿:,]\s*\S+\s$", before[-40:]):
        return "inside"
    written = text[start:end]
    if " " in term.strip():
        return "phrase"
    if written[:1].isupper() and (not sentence_start or written.isupper() or written != written.capitalize()):
        return "name"  # capitalised mid-sentence, ALL CAPS or CamelCase: a name
    if written[:1].isupper():
        return "name?"  # capitalised at a sentence start: could be either
    return "common"


def _hits(text: str, terms: Sequence[str]) -> list[_Hit]:
    """Every occurrence of every brand term, matched on word boundaries, accents and case folded."""
    folded = fold(text)
    if len(folded) != len(text):  # a rare letter whose lower case is longer ("İ"): keep offsets aligned
        folded = "".join(fold(c)[:1] or c for c in text)
    hits: list[_Hit] = []
    taken: list[tuple[int, int]] = []
    for term in terms:
        pattern = re.compile(r"(?<![\w])" + re.escape(fold(term)).replace(r"\ ", r"\s+") + r"(?![\w])")
        for m in pattern.finditer(folded):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue  # inside a longer term already matched ("escucha help" before "escucha")
            taken.append((m.start(), m.end()))
            hits.append(_Hit(m.start(), m.end(), _classify_hit(text, m.start(), m.end(), term)))
    return hits


def judge(
    text: str,
    *,
    terms: Sequence[str],
    addressed: bool = False,
    crisis: bool = False,
    complaint: float = 0.0,
    cues: Sequence[str] = (),
    question: bool = False,
    negative: float = 0.0,
) -> Relevance:
    """Decide whether ``text`` is for the brand named by ``terms`` (see the module's docstring).

    ``addressed`` says the post was sent to us (mention, comment, DM); ``crisis``, ``complaint``, ``cues``,
    ``question`` and ``negative`` (the negative-sentiment probability) are what the scorer found. A crisis is
    never hidden: a person decides whether it is ours.
    """
    if addressed:
        return Relevance(True, signals=["addressed"])
    if crisis:
        return Relevance(True, signals=["crisis"])
    if not terms:
        return Relevance(True, signals=["no brand terms configured"])
    hits = _hits(text, terms)
    if any(h.kind == "handle" for h in hits):
        return Relevance(True, signals=["@handle"])
    if not hits:
        return Relevance(False, NO_KEYWORD)
    named = [h for h in hits if h.kind in ("hashtag", "phrase", "name", "name?")]
    if not named:
        # Inside a longer name the keyword may still be ours ("Amazon Prime", "Apple TV"): a complaint decides.
        named = [h for h in hits if h.kind == "inside"] if _complains(text, cues, complaint, negative) else []
    if not named:
        kinds = {h.kind for h in hits}
        return Relevance(False, INSIDE_PHRASE if "inside" in kinds else COMMON_WORD)
    body = fold(text)
    names = [h for h in named if h.kind != "inside"]  # the keyword as a name, not promoted by a complaint
    strong = [h for h in names if h.kind != "name?"]
    signals: list[str] = []
    if cues:
        signals.append("complaint cues")
    if complaint >= 0.5:
        signals.append(f"complaint {complaint:.2f}")
    if negative >= NEGATIVE_ABOUT and (strong or not names):  # not names: a complaint made "Amazon Prime" ours
        signals.append(f"negative {negative:.2f}")
    if _CUSTOMER.search(body):
        signals.append("customer words")
    if names:
        # Softer signals count only where the keyword is the brand's own name: "you", a question or praise
        # near "Amazon Rainforest" or "Just Cause 2" are somebody else's.
        if _SECOND_PERSON.search(body) and _opens_with(text, names):
            signals.append("addressed by name")
        if _question_about(text, names, question):
            signals.append("question about the name")
        if strong and _VERDICT.search(body):
            signals.append("verdict on the name")
    if signals:
        return Relevance(True, signals=signals)
    return Relevance(False, NOT_AIMED)
