"""Checks for what people type about staff (names, e-mails, language codes): a ``ValueError`` with the reason,
never a value stored half-right or a database error later."""

from __future__ import annotations

import re

from models.store import clean_text

MAX_NAME_CHARS = 255  # Staff.name and Staff.email
MAX_CODES_CHARS = 64  # Staff.languages
# A language code such as es, en or pt-br.
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")
# Loose on purpose: one @, something on each side, no spaces; the address is only a sign-in name.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def storable(text: str) -> bool:
    """Whether every database column takes ``text`` as it is (no NUL or other controls, no lone surrogates)."""
    return clean_text(text) == text


def check_name(name: str) -> str:
    """Return a person's display name, stripped; refuse an empty, overlong or unstorable one."""
    cleaned = name.strip()
    if not cleaned:
        raise ValueError("the name is empty")
    if len(cleaned) > MAX_NAME_CHARS or not storable(cleaned):
        raise ValueError(f"a name has at most {MAX_NAME_CHARS} characters and no control characters")
    return cleaned


def check_email(email: str) -> str:
    """Return a sign-in e-mail, stripped and lower-cased; refuse one that cannot be an address."""
    cleaned = email.strip().lower()
    if len(cleaned) > MAX_NAME_CHARS or not storable(cleaned) or not _EMAIL.fullmatch(cleaned):
        raise ValueError(f"not an e-mail address: {cleaned[:40]!r}")
    return cleaned


def check_languages(languages: str) -> str:
    """Return comma-separated language codes as stored (sorted, lower case); refuse anything else."""
    codes = {part.strip().lower() for part in languages.split(",") if part.strip()}
    bad = sorted(c for c in codes if not _LANGUAGE_CODE.fullmatch(c))
    if bad:
        raise ValueError(f"not a language code: {', '.join(repr(c[:20]) for c in bad[:3])} (e.g. es, en)")
    stored = ",".join(sorted(codes))
    if len(stored) > MAX_CODES_CHARS:
        raise ValueError(f"at most {MAX_CODES_CHARS} characters of language codes")
    return stored
