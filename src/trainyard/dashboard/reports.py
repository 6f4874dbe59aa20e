"""Find the reports other parts of trainyard write for a run or a model version.

The audit writes `audit.json` / `audit.html` (run folder or artifact); the
evaluation writes `evaluation.json` (run folder, artifact) and the model card
`model_card.{html,json,md}` in `reports/<name>/v<version>/`. The
dashboard shows what it finds and says plainly when nothing is there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainyard.registry.workspace import Workspace

KINDS = {
    "audit": ("audit",),
    "evaluation": ("model_card", "evaluation", "report", "card"),
    "monitoring": ("monitor", "drift"),
}


def card_dirs(ws: Workspace, models: list[dict]) -> list[Path]:
    """Where the evaluation writes a version's model card: reports/<name>/v<version>/."""
    return [ws.home / "reports" / m["name"] / f"v{m['version']}" for m in models]


def report_dirs(ws: Workspace, run_id: str | None = None, artifact_path: str | None = None,
                first: list[Path] | None = None) -> list[Path]:
    dirs = list(first or [])
    if run_id:
        dirs.append(ws.home / "runs" / run_id)
    if artifact_path:
        dirs.append(ws.home / artifact_path)
    return [d for d in dirs if d.is_dir()]


def find_reports(ws: Workspace, kind: str, run_id: str | None = None, artifact_path: str | None = None,
                 first: list[Path] | None = None) -> dict[str, Any]:
    """{'json': parsed JSON or None, 'html': path relative to the workspace or None, 'images': [...]}"""
    found: dict[str, Any] = {"json": None, "json_path": None, "html": None, "images": []}
    for directory in report_dirs(ws, run_id, artifact_path, first):
        for stem in KINDS[kind]:
            for path in sorted(directory.rglob(f"{stem}*")):
                if not path.is_file() or ".tmp" in path.name:
                    continue
                rel = path.relative_to(ws.home).as_posix()
                if path.suffix == ".json" and found["json"] is None:
                    try:
                        found["json"] = json.loads(path.read_text())
                        found["json_path"] = rel
                    except (OSError, json.JSONDecodeError):
                        continue
                elif path.suffix in (".html", ".htm") and found["html"] is None:
                    found["html"] = rel
                elif path.suffix in (".png", ".svg"):
                    found["images"].append(rel)
    return found


def findings(report: Any) -> list[dict[str, Any]]:
    """The list of findings in an audit JSON, however it is nested ('findings' at the top or under 'report')."""
    if isinstance(report, dict):
        for key in ("findings", "issues", "problems"):
            if isinstance(report.get(key), list):
                return [f for f in report[key] if isinstance(f, dict)]
        if isinstance(report.get("report"), dict):
            return findings(report["report"])
    if isinstance(report, list):
        return [f for f in report if isinstance(f, dict)]
    return []


def safe_workspace_file(ws: Workspace, rel: str) -> Path | None:
    """A file inside the workspace's runs/, artifacts/ or reports/ folders, never outside (no ../ escapes)."""
    home = ws.home.resolve()
    path = (home / rel).resolve()
    allowed = (home / "runs", home / "artifacts", home / "reports")
    if not any(path.is_relative_to(a.resolve()) for a in allowed) or not path.is_file():
        return None
    return path
