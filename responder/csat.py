"""Customer satisfaction: reading a customer's answer in Spanish or English, storing it, and reading them back.

A satisfaction question is answered from 1 to 5 ("5", "cinco", "⭐⭐⭐⭐", "muy bien", "10/10"), the promoter
question from 0 to 10; anything after the rating is the customer's comment. Trends and the customer page read
the answers through ``ratings``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from ground.clock import aware
from models.tables import Post, PostKind, Satisfaction, utcnow

SATISFACTION = 5
PROMOTER = 10
SCALES = (SATISFACTION, PROMOTER)
# Longer than a rating and a short comment: a new message, not an answer to our question.
MAX_ANSWER_CHARS = 280

NUMBER_WORDS = {
    "cero": 0, "zero": 0, "uno": 1, "one": 1, "dos": 2, "two": 2, "tres": 3, "three": 3, "cuatro": 4, "four": 4,
    "cinco": 5, "five": 5, "seis": 6, "six": 6, "siete": 7, "seven": 7, "ocho": 8, "eight": 8, "nueve": 9,
    "nine": 9, "diez": 10, "ten": 10,
}  # fmt: skip
# Words for a 1–5 rating, matched on lower-case text without accents; "no muy bien" before "muy bien" before "bien".
PHRASES: dict[str, int] = {
    "nada satisfecho": 1, "nada satisfecha": 1, "muy insatisfecho": 1, "muy insatisfecha": 1, "muy mal": 1,
    "fatal": 1, "pesimo": 1, "horrible": 1, "terrible": 1, "very bad": 1, "very poor": 1, "awful": 1,
    "not satisfied at all": 1, "not at all satisfied": 1,
    "no muy bien": 2, "no muy bueno": 2, "not very good": 2, "not good": 2, "insatisfecho": 2, "insatisfecha": 2,
    "unsatisfied": 2, "dissatisfied": 2, "mal": 2, "bad": 2, "poor": 2,
    "mas o menos": 3, "regular": 3, "normal": 3, "aceptable": 3, "so so": 3, "so-so": 3, "okay": 3, "ok": 3,
    "meh": 3,
    "muy bien": 5, "muy bueno": 5, "muy buena": 5, "muy satisfecho": 5, "muy satisfecha": 5, "excelente": 5,
    "excellent": 5, "genial": 5, "perfecto": 5, "perfect": 5, "estupendo": 5, "fantastico": 5, "fantastic": 5,
    "very good": 5, "very satisfied": 5, "great": 5, "amazing": 5,
    "bien": 4, "bueno": 4, "buena": 4, "satisfecho": 4, "satisfecha": 4, "satisfied": 4, "good": 4, "fine": 4,
}  # fmt: skip
_PHRASE_ORDER = sorted(PHRASES, key=len, reverse=True)
STARS = "⭐★🌟✩☆"
# A rating ends the text or is followed by punctuation: "5, great" is a rating, "2 days waiting" is not one.
_SEPARATOR = r"(?:\s*$|\s*[.,!;:\-–—)(]+)"
_OUT_OF = r"(?:\s*(?:/|de|out of|sobre)\s*(?P<of>5|10))?"
_UNIT = r"(?:\s*(?P<unit>stars?|estrellas?|points?|puntos?|pts))?"
# A reply on X starts with the handles it answers ("@Escucha 5, gracias").
_LEADING_HANDLES = re.compile(r"^\s*(?:@\w+[:,]?\s*)+")
_NUMBER = re.compile(rf"^\s*(?P<n>\d{{1,2}}){_OUT_OF}{_UNIT}(?P<end>{_SEPARATOR})")
_WORD = re.compile(rf"^\s*(?P<w>[a-z]+){_OUT_OF}{_UNIT}(?P<end>{_SEPARATOR})")


@dataclass(frozen=True, slots=True)
class Answer:
    """A customer's rating on the question's scale, and what else they wrote."""

    score: int
    comment: str


def _plain(text: str) -> str:
    """Lower-case text without accents, one character for each character of ``text`` (so positions match)."""
    out = []
    for ch in text:
        base = unicodedata.normalize("NFKD", ch)[:1] or ch
        low = base.lower()
        out.append(low if len(low) == 1 else base)
    return "".join(out)


def _on_scale(value: int, of: int | None, scale: int) -> int | None:
    if of is not None and of != scale:
        if value > of:
            return None
        value = int(value * scale / of + 0.5)  # "10/10" on a 1–5 question is a 5, "4/5" on 0–10 an 8
    low = 1 if scale == SATISFACTION else 0
    return value if low <= value <= scale else None


def _comment(text: str, start: int) -> str:
    return text[start:].strip(" \t\r\n.,!;:-–—()")


def parse_answer(text: str, scale: int = SATISFACTION) -> Answer | None:
    """Read a rating (and the comment after it) from a customer's answer; None when it is not one."""
    if scale not in SCALES or not text or len(text) > MAX_ANSWER_CHARS:
        return None
    handles = _LEADING_HANDLES.match(text)
    text = text[handles.end() :] if handles else text
    plain = _plain(text)
    stripped = plain.lstrip()
    lead = len(plain) - len(stripped)
    stars = len(stripped) - len(stripped.lstrip(STARS + "\ufe0f "))
    run = stripped[:stars]
    count = sum(run.count(s) for s in STARS)
    if count:
        value = count if scale == SATISFACTION else count * 2
        return Answer(value, _comment(text, lead + stars)) if 1 <= count <= 5 else None
    for pattern, group in ((_NUMBER, "n"), (_WORD, "w")):
        match = pattern.match(plain)
        if match is None:
            continue
        raw = match.group(group)
        number = int(raw) if raw.isdigit() else NUMBER_WORDS.get(raw)
        if number is None:
            continue
        of = int(match.group("of")) if match.group("of") else None
        if of is None and (match.group("unit") or "").startswith(("star", "estrella")):
            of = SATISFACTION  # stars are out of five, whatever the question's scale
        rated = _on_scale(number, of, scale)
        return None if rated is None else Answer(rated, _comment(text, match.end()))
    if scale != SATISFACTION:
        return None
    for phrase in _PHRASE_ORDER:
        if stripped.startswith(phrase) and re.match(_SEPARATOR, stripped[len(phrase) :]):
            return Answer(PHRASES[phrase], _comment(text, lead + len(phrase)))
    return None


def parse_rating(text: str) -> int | None:
    """Read a 1–5 answer such as '4', ' 5/5 ', 'cinco' or '⭐⭐⭐'; anything else is not an answer."""
    answer = parse_answer(text, SATISFACTION)
    return answer.score if answer else None


def closes_case(answer: Answer, scale: int) -> bool:
    """Whether an answer is only a rating: a low one with a comment, or a comment asking something, is new work."""
    low = answer.score <= (2 if scale == SATISFACTION else 6)
    return not answer.comment or not (low or "?" in answer.comment)


def record_rating(
    session: Session,
    *,
    satisfaction_id: int,
    score: int,
    answer_post_id: int | None = None,
    comment: str | None = None,
) -> Satisfaction:
    """Store a customer's answer on its question's scale (the caller commits)."""
    row = session.get(Satisfaction, satisfaction_id)
    if row is None:
        raise LookupError(f"satisfaction question {satisfaction_id} does not exist")
    low = 1 if row.scale == SATISFACTION else 0
    if not low <= score <= row.scale:
        raise ValueError(f"a score on this question is from {low} to {row.scale}")
    row.score = score
    row.comment = (comment or "").strip()[:MAX_ANSWER_CHARS] or None
    row.answered_at = utcnow()
    row.answer_post_id = answer_post_id
    session.add(row)
    return row


@dataclass(frozen=True, slots=True)
class Rating:
    """One answered question, as trends and the customer page show it."""

    satisfaction_id: int
    post_id: int
    author_id: int | None
    network: str
    channel: str  # dm or public
    staff_id: int | None
    scale: int
    score: int
    comment: str | None
    asked_at: datetime
    answered_at: datetime


def ratings(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    author_ids: list[int] | None = None,
    scale: int | None = None,
) -> list[Rating]:
    """Answered satisfaction and promoter questions, oldest first, optionally for some authors or one scale."""
    query = (
        select(Satisfaction, Post)
        .join(Post, col(Post.id) == col(Satisfaction.post_id))
        .where(col(Satisfaction.score).is_not(None), col(Satisfaction.answered_at).is_not(None))
        .order_by(col(Satisfaction.answered_at), col(Satisfaction.id))
    )
    if since is not None:
        query = query.where(col(Satisfaction.answered_at) >= since)
    if until is not None:
        query = query.where(col(Satisfaction.answered_at) < until)
    if author_ids is not None:
        query = query.where(col(Post.author_id).in_(author_ids))
    if scale is not None:
        query = query.where(col(Satisfaction.scale) == scale)
    out: list[Rating] = []
    for row, post in session.execute(query).all():
        assert row.id is not None and row.score is not None and row.answered_at is not None
        out.append(
            Rating(
                satisfaction_id=row.id,
                post_id=row.post_id,
                author_id=post.author_id,
                network=post.network,
                channel="dm" if post.kind == PostKind.DM else "public",
                staff_id=post.assignee_id,
                scale=row.scale,
                score=row.score,
                comment=row.comment,
                asked_at=aware(row.asked_at),
                answered_at=aware(row.answered_at),
            )
        )
    return out
