"""Errors a person can fix (a setting, the database, a file): the CLI shows them as one line, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake or missing step a person can fix; ``str()`` is one line that says what to do."""

    exit_code = 1
