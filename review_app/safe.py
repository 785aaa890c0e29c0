"""Neutralise text written by strangers before it reaches a Streamlit element.

Post texts, author names and classifier reasons (which quote the post) come from the networks. Shown as
markdown they could fake links, headings or coloured warnings; shown as HTML they could run script. Plain
elements (``st.text``, ``st.code``, dataframes) take the text through ``plain``; anything rendered as
markdown (``st.markdown``, ``st.caption``, alerts, labels) takes it through ``md``.
"""

from __future__ import annotations

import re
import string
import unicodedata

# Bidirectional overrides and isolates can make a name read backwards or hide text (Trojan Source).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# CommonMark lets a backslash escape any ASCII punctuation, which covers markdown, HTML tags and entities,
# and Streamlit's own syntax (``:red[...]``, ``$math$``).
_PUNCTUATION = frozenset(string.punctuation)
_BLANK_RUN = re.compile(r"[ \t]*\n[ \t\n]*")


def plain(text: str | None) -> str:
    """Return ``text`` without control or bidi characters, keeping newlines and tabs; for literal elements."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or not (unicodedata.category(ch) == "Cc" or ch in _BIDI))


def md(text: str | None, *, inline: bool = True) -> str:
    """Return ``text`` escaped so markdown shows it literally; ``inline`` folds newlines into spaces."""
    cleaned = plain(text)
    # Markdown needs two trailing spaces for a line break; blank lines would start new blocks.
    cleaned = " ".join(cleaned.split()) if inline else _BLANK_RUN.sub("  \n", cleaned.strip())
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in cleaned)


def shorten(text: str, limit: int) -> str:
    """Return ``text`` cut to at most ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
