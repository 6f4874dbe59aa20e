"""The one pattern for everything a user names: models, aliases and tag keys.

A name is 1 to 64 characters: letters, digits, `_`, `.` and `-`, starting with a letter or a digit, and never
containing `..`. So a name is always one safe path component (a model's artifacts live under
`artifacts/NAME/`), one URL segment, and plain text in a page. Aliases follow the same pattern and, so that
`NAME@3` stays a version, are not all digits (nor `latest`). Tag values are free text of up to 256 printable
characters.
"""

from __future__ import annotations

import re

from trainyard.errors import ConfigError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PATTERN_TEXT = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit, without '..'"


def check_name(value, what: str = "model name") -> str:
    """`value` if it is a valid name, else a ConfigError that names the rule."""
    text = value if isinstance(value, str) else str(value)
    if not NAME_RE.fullmatch(text) or ".." in text:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ConfigError(f"{shown!r} is not a valid {what}: a {what} is {PATTERN_TEXT}.",
                          f"choose a {what} such as churn, churn-v2 or churn_2026.")
    return text


def check_alias(value) -> str:
    alias = check_name(value, "alias")
    if alias.isdigit() or alias == "latest":
        raise ConfigError(f"'{alias}' cannot be an alias: NAME@{alias} already means "
                          + ("a version number." if alias.isdigit() else "the newest version."),
                          "use a word such as production or staging.")
    return alias


def check_tag_value(value) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > 256 or any(not ch.isprintable() for ch in text):
        raise ConfigError(f"Tag value {text[:40]!r}... is not allowed: tag values are up to 256 printable characters.",
                          "shorten it, or remove line breaks and control characters.")
    return text


def safe_stem(text: str, default: str) -> str:
    """A valid name made from a file name (characters outside the pattern become '-'), or `default`."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).replace("..", ".").strip("-._")[:64]
    return stem if stem and NAME_RE.fullmatch(stem) else default
