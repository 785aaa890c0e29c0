"""Personal data that must not appear in a public reply: the customer's e-mail or phone number, a card number."""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, optionally grouped by spaces, dots or dashes, optionally after a "+": a phone number.
PHONE = re.compile(r"\+?\d(?:[\s.-]?\d){6,}")
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def personal_data(reply: str, *, customer_text: str = "") -> str:
    """Name the personal data a public reply would show ('an e-mail address', …), or "" when there is none.

    The customer's own e-mail or phone number (as they wrote it to us) and any payment card number count; the
    brand's own contact address or an order number do not.
    """
    for match in CARD.finditer(reply):
        digits = _digits(match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return "a card number"
    theirs = {m.group().lower() for m in EMAIL.finditer(customer_text)}
    if any(m.group().lower() in theirs for m in EMAIL.finditer(reply)):
        return "the customer's e-mail address"
    phones = {_digits(m.group()) for m in PHONE.finditer(customer_text)}
    if any(_digits(m.group()) in phones for m in PHONE.finditer(reply)):
        return "the customer's phone number"
    return ""
