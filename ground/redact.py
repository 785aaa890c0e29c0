"""Keep secrets out of log lines and error texts.

Two nets: every secret value taken out of its ``SecretStr`` (``reveal``) is remembered and replaced wherever it
shows up, raw or URL-encoded; and credential-shaped fragments are masked whatever their value (``access_token=…``
in the query strings facebook-sdk builds, ``Bearer …`` headers tweepy logs at DEBUG, OAuth 1.0a parameters
oauthlib logs). ``install`` applies both to every log record the process creates, whichever library logs it and
whichever handler (a terminal, a file, pytest's caplog) writes it.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

MASK = "[redacted]"
# Shorter values would mask ordinary words; real tokens and keys are far longer.
MIN_SECRET_CHARS = 8

# Parameter names whose values are credentials (OAuth 1.0a, Graph, requests-oauthlib's client repr).
_KEYS = (
    r"access_token|access_token_secret|appsecret_proof|client_secret|client_key|input_token|fb_exchange_token"
    r"|oauth_token|oauth_token_secret|oauth_signature|oauth_consumer_key|oauth_verifier"
    r"|resource_owner_key|resource_owner_secret|password"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key=value in query strings and bodies, also percent-encoded (%26key%3Dvalue in an OAuth base string).
    (re.compile(rf"(?i)(?<![a-z_])({_KEYS})(=|%3D)(?!{re.escape(MASK)})[^&\s\"',;)\]]+"), rf"\1\2{MASK}"),
    # key="value" in an OAuth Authorization header.
    (re.compile(rf'(?i)(?<![a-z_])({_KEYS})="[^"]*"'), rf'\1="{MASK}"'),
    # ('key', 'value') and 'key': 'value' in reprs of parameter lists and dicts.
    (re.compile(rf"(?i)(['\"](?:{_KEYS})['\"]\s*[:,]\s*)(['\"])[^'\"]*\2"), rf"\1\2{MASK}\2"),
    # Bearer tokens in headers.
    (re.compile(r"(?i)\b(Bearer)\s+[^\s'\",]+"), rf"\1 {MASK}"),
)

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False


def register(*values: str | None) -> None:
    """Remember secret values so they are masked wherever they appear (raw or URL-encoded), from now on."""
    with _lock:
        for value in values:
            if not value or len(value) < MIN_SECRET_CHARS:
                continue
            once = quote(value, safe="")
            _secrets.update({value, once, quote(once, safe=""), quote_plus(value)})
    install()


def reveal(value: SecretStr | None) -> str | None:
    """Return the plain value of a secret for a client library, masking it in logs from now on."""
    if value is None:
        return None
    plain = value.get_secret_value()
    register(plain)
    return plain


def redact(text: str) -> str:
    """Return ``text`` with every known secret and every credential-shaped fragment masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask secrets in a log record's message and in its traceback text, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: logging itself reports it later
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        # Formatters use exc_text when it is set: exception messages often carry the URL that failed.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install() -> None:
    """Mask secrets in every log record this process creates (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(make(*args, **kwargs))

    logging.setLogRecordFactory(factory)
