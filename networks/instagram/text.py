"""Instagram's text rules: 2,200 characters in a comment, 1,000 in a DM, and no links (Instagram shows them dead)."""

from __future__ import annotations

import re

# A comment (and so a reply to one) holds at most 2,200 characters; a DM at most 1,000.
IG_COMMENT_LIMIT = 2200
IG_MESSAGE_LIMIT = 1000
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_SPACES = re.compile(r"[ \t]{2,}")


def strip_links(text: str) -> str:
    """``text`` without web links: Instagram neither links nor previews them in comments, so they only confuse."""
    return _SPACES.sub(" ", _LINK.sub("", text)).strip()


def fit_instagram(text: str) -> str:
    """A draft made fit for Instagram: links taken out, cut to a DM's 1,000 characters on a word boundary.

    A draft may go to a comment or a DM; the DM's limit is the one both take.
    """
    cleaned = strip_links(text)
    if len(cleaned) <= IG_MESSAGE_LIMIT:
        return cleaned
    cut = cleaned[: IG_MESSAGE_LIMIT - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > IG_MESSAGE_LIMIT // 2 else cut).rstrip() + "…"
