"""What of a sent answer may be offered to another customer: the words a person wrote, without the case around them.

A sent answer greets its own customer ("Hola María,") and is signed by its own agent ("— Lucía"). Offered as it
was to the next customer, the suggestion read "Hi there, Hi there, …" or greeted the wrong person, because the
draft adds the new post's greeting and signature around it. An answer sent exactly as the desk suggested it (a
saved reply: "I'm Lucía and I'll look after your case; expect an answer within 15 minutes") holds no knowledge
and names another agent and another case's promise, so it is never reused at all (``embed_answers``, the index).

Only what the desk itself writes, or a person types the same way, is removed, so a second pass changes nothing:
a greeting word, then at most three capitalised words of name, then a comma, "!" or ":"; and a signature only when
it is the dash and the name of the person who sent the answer.
"""

from __future__ import annotations

import re

_GREETING = re.compile(
    r"^\s*(?:@\w+[\s,:]*)*[¡¿]?"
    r"(?i:hola|hi|hello|hey|dear|buen\s+d[ií]a|buenos\s+d[ií]as|buenas(?:\s+(?:tardes|noches))?|"
    r"good\s+(?:morning|afternoon|evening)|estimad[oa]s?)"
    r"(?:\s+there|(?:\s+[A-ZÁÉÍÓÚÑÜ][\w'’-]*){1,3})?\s*[,!:]\s*"
)


def reusable_text(text: str, *, signer: str = "") -> str:
    """The body of a sent answer: its leading handles and greeting, and ``signer``'s trailing signature, removed."""
    body = text.strip()
    names = [n for n in dict.fromkeys((signer.strip(), signer.strip().split(" ")[0])) if n]
    for name in names:  # the full name, or the first name the desk signs with ("— Lucía")
        signature = re.compile(r"\s*[—–]\s*" + re.escape(name) + r"\s*$")
        if signature.search(body):
            body = signature.sub("", body)
            break
    greeted = _GREETING.match(body)
    if greeted is None:
        return body
    body = body[greeted.end() :].strip()
    if body[:1].islower() and not body[1:2].isupper():
        body = body[0].upper() + body[1:]  # "Hola María, sí, aceptamos…" → "Sí, aceptamos…" (not "iPhone" → "IPhone")
    return body
