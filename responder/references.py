"""Order and case numbers a customer writes ("my order #5521", "pedido 5521"), found in a post's text."""

from __future__ import annotations

import re

# "#5521", or a number after a word that names an order or a case in either language. Four to twelve digits:
# shorter ones are quantities and days ("2 days", "#1"), longer ones are phone or card numbers.
_REFERENCE = re.compile(
    r"(?:#|\b(?:order|orden|pedido|case|caso|ticket|ref(?:erence|erencia)?|n[ºo°]\.?)\s*(?:n[ºo°]\.?|number|número|num\.?)?\s*[:.]?\s*#?\s*)"
    r"(\d{4,12})\b",
    re.IGNORECASE,
)
MAX_REFERENCES = 5


def references(text: str) -> list[str]:
    """Return the order or case numbers in ``text``, in order of first appearance, at most five."""
    found: list[str] = []
    for match in _REFERENCE.finditer(text[:10_000]):
        number = match[1]
        if number not in found:
            found.append(number)
        if len(found) == MAX_REFERENCES:
            break
    return found
