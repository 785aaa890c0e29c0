"""Cheap language identification for short social posts: Spanish, English or other.

The desk only routes between Spanish and English queues, so this is a vote between
two sets of function words plus a few unmistakable Spanish characters, with a small
set of French/Portuguese/Italian/German function words so that those posts are not
forced into a queue whose agents cannot read them.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["es", "en", "other"]

# Handles, URLs and hashtags name things rather than speak a language, so they are removed
# before counting; "@soporte_es" must not make an English post Spanish.
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def _words(spec: str) -> frozenset[str]:
    """Whitespace-separated words written as prose, so the lists stay readable."""
    return frozenset(spec.split())


_ACCENTS = str.maketrans("áéíóúüàèìòùâêîôûäëïöãõç’", "aeiouuaeiouaeiouaeioaoc'")

# Words shared by two of the languages ("no", "a", "me", "he", "son", "la", "que", "es",
# "mi", "una") are left out of the lists on purpose: they carry no vote.
_ES_WORDS = _words(
    """
    el los las lo del al un unos unas y o pero porque por para con sin sobre entre hasta
    desde cuando como donde quien cual cuales esto esta este estos estas eso esa ese
    muy mas tambien ya todavia aun nunca siempre nada algo todo todos todas
    yo tu usted ustedes nosotros ellos ella le les se nos te su sus mis tus
    soy eres somos estoy estas estan estamos fue fueron hay tengo tiene tienen tenemos
    puedo puede pueden hace hacer hizo ser estar pues entonces aqui ahi alli hoy ayer
    manana dias dia hola gracias favor bueno buena malo mala gusta quiero necesito
    pedido cuenta servicio ayuda llevo sigue sigo nadie cuanto voy va vas mucho muchos muchas poco
    """
)
_EN_WORDS = _words(
    """
    the and or but because of to in on at for with without from by about into over
    this that these those there here what which who whom whose when where why how
    i you he she it we they my your his her its our their him us them
    is are was were be been being am do does did done have has had having
    will would can could should shall may might must not don't can't won't isn't
    aren't wasn't didn't doesn't haven't hasn't i'm it's you're i've i'll
    just very still already never always nothing something all any some every
    thanks thank hello hi please yes good bad great love hate order account service help
    """
)
# Spanish words that French, Portuguese or Italian share but English does not: half a vote.
_ES_WEAK = _words("que la es mi en una si solo vamos serio")
# Only words that are neither Spanish nor English, so a hit is real evidence of "other".
_OTHER_WORDS = _words(
    """
    je ne pas est et les des une vous nous avec pour c'est qui dans sont mais tres
    du au aux sur ses cette leur ete etre avoir fait tout comme j'ai qu'il
    nao voce muito obrigado obrigada isso entao tambem uma com mais ao na
    pra tem ele ela voces vai sao
    ich und nicht der die das ist mit ein eine sie auf fur auch sind wir
    il che sono di per questo molto grazie ho anche della
    """
)
# One lookup per word instead of four set probes: (es, en, other) votes.
_VOTES: dict[str, tuple[float, float, float]] = {
    w: (
        1.0 if w in _ES_WORDS else 0.5 if w in _ES_WEAK else 0.0,
        1.0 if w in _EN_WORDS else 0.0,
        1.0 if w in _OTHER_WORDS else 0.0,
    )
    for w in _ES_WORDS | _ES_WEAK | _EN_WORDS | _OTHER_WORDS
}
_ES_CHARS = frozenset("ñ¿¡")
_SPANISH_ACCENTS = frozenset("áéíóú")
# Accents Spanish never writes: French, Portuguese, Italian and German do.
_OTHER_CHARS = frozenset("àèìòùâêîôûãõçäößœ")


def _is_foreign_letter(ch: str) -> bool:
    """True for letters outside the Latin blocks (Arabic, Cyrillic, CJK, Devanagari...)."""
    return ch.isalpha() and ord(ch) > 0x24F


def detect_language(text: str) -> Language:
    """Return "es", "en" or "other" ("other" also when the text gives no evidence)."""
    if not text:
        return "other"
    cleaned = _NOISE.sub(" ", text[:2000]).lower()
    words = _WORD.findall(cleaned.translate(_ACCENTS))
    if not words:
        return "other"
    es = en = other = 0.0
    for word in words:
        vote = _VOTES.get(word)
        if vote is not None:
            es += vote[0]
            en += vote[1]
            other += vote[2]
    # Most posts are ASCII; the per-character checks below only run when they can matter.
    if not cleaned.isascii():
        foreign = sum(1 for ch in cleaned if _is_foreign_letter(ch))
        if foreign > sum(len(w) for w in words) - foreign:
            return "other"
        # ñ ¿ ¡ are close to proof of Spanish; acute accents are weaker (French and Portuguese use them).
        es += 2.0 * sum(cleaned.count(ch) for ch in _ES_CHARS)
        es += 0.5 * min(4, sum(cleaned.count(ch) for ch in _SPANISH_ACCENTS))
        other += 1.5 * min(4, sum(cleaned.count(ch) for ch in _OTHER_CHARS))

    best = max(es, en)
    if best == 0 or other > best:
        return "other"
    # A long post with only a stray hit or two is more likely a third language.
    if len(words) >= 6 and best / len(words) < 0.12:
        return "other"
    if es == en:
        return "other"
    return "es" if es > en else "en"
