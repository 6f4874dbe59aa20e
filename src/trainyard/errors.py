"""Errors a user can act on.

Every problem caused by input (a path, a flag, a column, a file) is raised as a
`TrainyardError`: one line naming the problem and one naming the fix. The CLI
prints both and exits with code 2, with no traceback unless `--debug`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrainyardError(Exception):
    """A problem the user can fix."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(problem + (f" Fix: {fix}" if fix else ""))


class DataError(TrainyardError):
    """The data cannot be used as given."""


class ConfigError(TrainyardError):
    """A flag, option or name is wrong."""


class NotFoundError(TrainyardError):
    """A run, model, version or file does not exist."""


class ArtifactError(TrainyardError):
    """A saved model is missing, incomplete or has been altered."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """'did you mean ...' text for a misspelt name, or the list of valid names."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == name.lower().strip()]
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(repr(c) for c in choices[:20])
    more = f" (and {len(choices) - 20} more)" if len(choices) > 20 else ""
    return f"valid names are {shown}{more}."
