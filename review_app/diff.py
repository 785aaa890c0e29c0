"""A word-level diff of an answer against the machine's suggestion, rendered inert as HTML."""

from __future__ import annotations

import difflib
import html
import re

from review_app.safe import plain

_TOKENS = re.compile(r"\s+|[^\s]+")
SAME, DELETED, INSERTED = "same", "del", "ins"


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Return ``new`` against ``old`` as (op, text) runs: same, del (only in old) and ins (only in new)."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append((SAME, "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append((DELETED, "".join(a[i1:i2])))
        if j2 > j1:
            runs.append((INSERTED, "".join(b[j1:j2])))
    return runs


_STYLE = {
    DELETED: "background:#fde2e1;color:#8a1c17;text-decoration:line-through",
    INSERTED: "background:#dcf5e3;color:#14532d;text-decoration:none",
}


def diff_html(old: str, new: str) -> str:
    """The diff as HTML in which every piece of text is escaped: markup or script in either text stays text."""
    parts: list[str] = []
    for op, text in word_diff(plain(old), plain(new)):
        escaped = html.escape(text, quote=True)
        parts.append(f'<{op} style="{_STYLE[op]}">{escaped}</{op}>' if op in _STYLE else escaped)
    return '<div style="white-space:pre-wrap;line-height:1.6">' + "".join(parts) + "</div>"
