"""Each setting is declared once: a dataclass field of the config object that owns it, with its flag and help.

    time_limit: float = setting(60.0, "Time for the whole run: seconds or 30m, 1h.", flag="--time-limit", kind="duration")

`commands/options.py` turns these fields into the CLI's options (help text included); a field with the same name
in another config object (a language model's `epochs`, say) carries no flag and takes the value by name.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields

KINDS = ("int", "float", "str", "bool", "list", "duration")


def setting(default=None, help: str = "", *, flag: str | None = None, kind: str | None = None, short: str | None = None,
            factory=None) -> Field:
    """A dataclass field that is also a CLI option (`flag`, e.g. "--lora/--full" for a switch with a negative)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    metadata = {"help": help, "flag": flag, "kind": kind, "short": short}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def cli_fields(cls) -> list[Field]:
    """The fields of a config class that are CLI options, in declaration order."""
    return [f for f in fields(cls) if f.metadata.get("flag")]


def default_of(f: Field):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None
