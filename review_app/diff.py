"""A word-level diff of an answer against the machine's suggestion, rendered inert as HTML."""

from __future__ import annotations

import difflib
import html
import re

from review_app.safe import plain

_TOKENS = re.compile(r"\s+|[^\s]+")
SAME, DELETED, INSERTED = "same", "del", "ins"


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Return ``new`` against ``old`` as (op, text) runs: same, del (only in old) and ins (only in new).

    A space alone between two changes joins them, so a rewritten sentence reads as one struck phrase and one new
    one, not as every other word struck ("~~Please~~ Your ~~send~~ order ~~us~~ #5521 …").
    """
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    runs: list[tuple[str, str]] = []
    gone: list[str] = []
    came: list[str] = []

    def flush() -> None:
        if gone:
            runs.append((DELETED, "".join(gone)))
        if came:
            runs.append((INSERTED, "".join(came)))
        gone.clear()
        came.clear()

    for n, (op, i1, i2, j1, j2) in enumerate(ops):
        if op != "equal":
            gone.extend(a[i1:i2])
            came.extend(b[j1:j2])
            continue
        same = "".join(a[i1:i2])
        between = (gone or came) and n + 1 < len(ops) and not same.strip()
        if between:
            # Both sides had this space: it belongs to the struck phrase and to the new one alike.
            gone.append(same)
            came.append(same)
            continue
        flush()
        runs.append((SAME, same))
    flush()
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
