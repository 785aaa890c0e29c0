"""Checks that a feature's catalogue block can join the catalogue."""

from __future__ import annotations


def merge(into: dict[str, dict[str, str]], name: str, block: dict[str, dict[str, str]]) -> None:
    """Add ``block``'s strings to ``into``; a key already there, or one language without the other, is an error."""
    if set(block) != set(into):
        raise ValueError(f"strings module {name!r} must define exactly the languages {sorted(into)}")
    if set(block["es"]) != set(block["en"]):
        missing = sorted(set(block["es"]) ^ set(block["en"]))
        raise ValueError(f"strings module {name!r} lacks a translation of {missing}")
    for code, strings in block.items():
        twice = sorted(set(strings) & set(into[code]))
        if twice:
            raise ValueError(f"strings module {name!r} defines {twice} a second time")
        into[code].update(strings)
