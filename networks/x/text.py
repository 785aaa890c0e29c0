"""X's weighted character count (twitter-text v3 rules), so the 280 limit is the one X applies.

X counts most Latin, Greek, Cyrillic, Hebrew and Arabic characters (and a few punctuation ranges) as one,
every other code point as two, any URL as 23 and any emoji sequence as two, after NFC normalisation.
We implement the rules here: the PyPI port needs ``pkg_resources`` at import time.
"""

from __future__ import annotations

import re
import unicodedata

X_MAX_WEIGHT = 280
URL_WEIGHT = 23
# (first, last) code points that weigh 1; everything else weighs 2 (twitter-text config v3).
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_ZWJ, _VS16, _KEYCAP = 0x200D, 0xFE0F, 0x20E3


def _weight(cp: int) -> int:
    return 1 if any(lo <= cp <= hi for lo, hi in _LIGHT_RANGES) else 2


def _is_emoji_base(cp: int) -> bool:
    return 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF


def _is_modifier(cp: int) -> bool:
    return cp in (_VS16, _KEYCAP) or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F


def _segments(text: str) -> list[tuple[str, int]]:
    """Split text into (piece, weight): URLs, emoji sequences and single characters."""
    out: list[tuple[str, int]] = []
    pos = 0
    for match in _URL.finditer(text):
        out.extend(_plain_segments(text[pos : match.start()]))
        out.append((match.group(0), URL_WEIGHT))
        pos = match.end()
    out.extend(_plain_segments(text[pos:]))
    return out


def _plain_segments(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        cp = ord(text[i])
        if _is_emoji_base(cp) or (i + 1 < n and ord(text[i + 1]) in (_VS16, _KEYCAP)):
            j = i + 1
            if 0x1F1E6 <= cp <= 0x1F1FF and j < n and 0x1F1E6 <= ord(text[j]) <= 0x1F1FF:
                j += 1  # a flag is a pair of regional indicators
            while j < n:
                nxt = ord(text[j])
                if _is_modifier(nxt):
                    j += 1
                elif nxt == _ZWJ and j + 1 < n:
                    j += 2  # a joined sequence (family, profession) is still one emoji
                else:
                    break
            out.append((text[i:j], 2))
            i = j
            continue
        out.append((text[i], _weight(cp)))
        i += 1
    return out


def weighted_length(text: str) -> int:
    """Return the length X counts for ``text`` (at most 280 for a valid post)."""
    text = unicodedata.normalize("NFC", text)
    # Fast path for the common case (Latin text without links or emoji): every character weighs one.
    if "://" not in text and (not text or max(map(ord, text)) <= _LIGHT_RANGES[0][1]):
        return len(text)
    return sum(w for _, w in _segments(text))


def fits_x(text: str, limit: int = X_MAX_WEIGHT) -> bool:
    """Tell whether ``text`` fits X's limit as X counts it."""
    return weighted_length(text) <= limit


def truncate_x(text: str, limit: int = X_MAX_WEIGHT, *, ellipsis: str = "…") -> str:
    """Cut ``text`` at a word boundary so that it fits ``limit`` as X counts it, ending with ``ellipsis``."""
    text = unicodedata.normalize("NFC", text)
    if weighted_length(text) <= limit:
        return text
    budget = limit - weighted_length(ellipsis)
    kept: list[str] = []
    used = 0
    for piece, weight in _segments(text):
        if used + weight > budget:
            break
        kept.append(piece)
        used += weight
    cut = "".join(kept)
    # Prefer a word boundary unless that would throw away most of the text.
    space = cut.rfind(" ")
    if space > len(cut) * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + ellipsis
