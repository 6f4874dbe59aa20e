"""Findings and the report that holds them: ranked, serialisable to a dict, JSON and self-contained HTML."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from trainyard.data.audit.html import render_html

SEVERITIES = ("blocking", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class Finding:
    """One problem (or fact) about the data: what it is, why it matters and what to do about it."""

    check: str  # stable identifier, e.g. "leakage", "duplicate_rows"
    severity: str  # blocking, warning or info
    what: str
    why: str
    fix: str
    column: str | None = None
    score: float = 0.0  # how bad, for ranking within a severity (bigger first)
    data: dict = field(default_factory=dict)  # the numbers behind it (counts, rates, example rows)
    sampled: str | None = None  # how the check sampled or chunked, when it did

    def __post_init__(self):
        if self.severity not in _RANK:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    def line(self) -> str:
        where = f" [{self.column}]" if self.column else ""
        return f"{self.severity}{where} {self.what}"


@dataclass
class AuditReport:
    """Ranked findings plus the facts behind the plots (column profiles, class balance, target association)."""

    n_rows: int
    n_columns: int
    target: str | None
    task: str | None
    findings: list[Finding] = field(default_factory=list)
    columns: list[dict] = field(default_factory=list)  # per-column profile: role, missing, unique, ...
    plots: dict = field(default_factory=dict)  # data for the HTML plots
    timings: dict = field(default_factory=dict)  # seconds per check
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        self.rank()

    def rank(self) -> None:
        self.findings.sort(key=lambda f: (_RANK[f.severity], -float(f.score or 0), f.check, f.column or ""))

    def add(self, findings) -> None:
        self.findings.extend(findings)
        self.rank()

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "blocking"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def summary(self) -> dict:
        counts = {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}
        return {"rows": self.n_rows, "columns": self.n_columns, "target": self.target, "task": self.task, **counts}

    def to_dict(self, plots: bool = True) -> dict:
        out = {
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "columns": self.columns,
            "timings": self.timings,
            "settings": self.settings,
        }
        if plots:
            out["plots"] = self.plots
        return _jsonable(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        return render_html(self)

    def save(self, directory) -> dict:
        """Write audit.json and audit.html into `directory`; returns their paths."""
        from pathlib import Path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"json": directory / "audit.json", "html": directory / "audit.html"}
        paths["json"].write_text(self.to_json())
        paths["html"].write_text(self.to_html(), encoding="utf-8")
        return paths

    def __repr__(self) -> str:
        s = self.summary()
        return f"AuditReport({s['rows']} rows x {s['columns']} columns: {s['blocking']} blocking, {s['warning']} warning, {s['info']} info)"

    def _repr_html_(self) -> str:  # notebooks show the report
        return self.to_html()


def _jsonable(obj):
    """Plain JSON types: numpy scalars to Python, NaN/inf to None, tuples to lists, keys to str."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            return str(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)
