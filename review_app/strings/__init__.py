"""Interface strings by feature: each module here holds ``STRINGS = {"es": {...}, "en": {...}}`` for one feature.

A feature's strings live in a file of their own so that work on two features never edits the same lines; the
catalogue (``review_app.i18n``) finds every module here by itself and refuses a key defined twice.
"""

from __future__ import annotations

import importlib
import pkgutil

from review_app.strings import base

Catalogue = dict[str, dict[str, str]]


def feature_blocks() -> list[tuple[str, Catalogue]]:
    """Return every feature module's name and catalogue, in name order."""
    blocks: list[tuple[str, Catalogue]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == base.__name__.rsplit(".", 1)[-1]:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        blocks.append((info.name, module.STRINGS))
    return blocks
