"""Shared bits of the CLI: consoles, list-options, JSON output, tables."""

from __future__ import annotations

import json
import math
from datetime import datetime

from rich.console import Console
from rich.table import Table
from trainyard.errors import ConfigError

console = Console()
err_console = Console(stderr=True)


def split_list(values: list[str] | None) -> list[str]:
    """--include a,b --include c -> ['a', 'b', 'c']."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def parse_duration(text: str | None) -> float | None:
    """--time-limit 90, 90s, 30m, 1.5h or 1h30m -> seconds."""
    import re


    if text is None:
        return None
    value = text.strip().lower()
    try:
        return float(value)
    except ValueError:
        pass
    parts = re.fullmatch(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?", value)
    if parts is None or not any(parts.groups()):
        raise ConfigError(f"'{text}' is not a duration.", "give seconds (600) or a duration with h, m, s (30m, 1h, 1h30m, 90s).")
    h, m, sec = (float(x) if x else 0.0 for x in parts.groups())
    return h * 3600 + m * 60 + sec


def process_started() -> float | None:
    """When this process started: a time limit covers the interpreter's start-up and imports too."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:
        return None


def print_json(obj) -> None:
    console.print_json(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, datetime):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def table(title: str, columns: list[str], rows: list[list], justify_numbers: bool = True) -> Table:
    tab = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        tab.add_column(c)
    for r in rows:
        tab.add_row(*[fmt(v) for v in r])
    return tab


def unescape(text: str | None) -> str | None:
    """'\\n%\\n' as typed in a shell (--doc-separator, --stop): the escapes become the characters."""
    return None if text is None else text.replace("\\n", "\n").replace("\\t", "\t")
