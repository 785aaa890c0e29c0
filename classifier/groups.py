"""Which texts count as the same, and which fold a text falls in: shared by the pools, the trainer and the teacher.

Why its own module: the trainer holds the calibration slice out and looks soft labels up by key, the pools and the
teacher read the trainer's splits; with these here, none of them imports another in a circle.
"""

from __future__ import annotations

import hashlib
import re

FOLDS = 5
CALIB_EVERY = 20  # 5 % of the groups: the calibration slice
CALIB = -1  # the fold number of the calibration slice
_FOLD_AWAY = re.compile(r"@\w+|https?://\S+|www\.\S+|[^\w]+")


def group_key(text: str) -> str:
    """The text with handles, links, case, punctuation and spacing folded away: near-copies share a key."""
    return _FOLD_AWAY.sub(" ", text.lower()).strip()


def fold_of(text: str, folds: int = FOLDS, calib_every: int = CALIB_EVERY) -> int:
    """The fold of ``text``'s group: ``CALIB`` for one hash slice in ``calib_every``, else 0..folds-1."""
    h = int.from_bytes(hashlib.sha256(group_key(text).encode()).digest()[:8], "big")
    if h % calib_every == 0:
        return CALIB
    return (h // calib_every) % folds


def text_key(text: str) -> int:
    """A stable 63-bit key of a text (whitespace-normalised), so soft labels are found without storing tweets."""
    digest = hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
