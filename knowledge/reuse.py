"""What of a sent answer may be offered to another customer: the words a person wrote, without the case around them.

A sent answer greets its own customer ("Hola María,") and is signed by its own agent ("— Lucía"). Offered as it
was to the next customer, the suggestion read "Hi there, Hi there, …" or greeted the wrong person, because the
draft adds the new post's greeting and signature around it. An answer sent exactly as the desk suggested it (a
saved reply: "I'm Lucía and I'll look after your case; expect an answer within 15 minutes") holds no knowledge
and names another agent and another case's promise, so it is never reused at all (``embed_answers``).
"""

from __future__ import annotations

import re

# A leading greeting as the desk writes them or a person types them: handles, then "Hola María," / "Hi there,"
# / "Buenos días!" (up to three words of name after the greeting word, then a comma or
# an exclamation mark: "Hello Kitty is back." is not a greeting).
_GREETING = re.compile(
    r"^\s*(?:@\w+[\s,:]*)*"
    r"(?:(?:hola|hi|hello|hey|buenas(?:\s+(?:tardes|noches))?|buenos\s+d[ií]as|good\s+(?:morning|afternoon|evening)|"
    r"dear|estimad[oa]s?)\b[^\S\n]*(?:[^\s,!.:;]+[^\S\n]*){0,3}[,!]\s*)?",
    re.IGNORECASE,
)
# The desk's own signature, " — Lucía" at the very end (an em or en dash: a hyphen is too common inside text).
_SIGNATURE = re.compile(r"\s+[—–]\s*[^—–\n]{1,40}$")


def reusable_text(text: str) -> str:
    """The body of a sent answer: its leading handles and greeting and its trailing signature removed."""
    body = _SIGNATURE.sub("", text.strip())
    body = _GREETING.sub("", body, count=1).strip()
    if body and body[0].islower():
        body = body[0].upper() + body[1:]  # "Hola María, sí, aceptamos…" → "Sí, aceptamos…"
    return body
