"""Where a model version came from: code version, training data, run and parameters."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """trainyard's version, plus the git commit (and whether the tree was dirty) when running from a checkout."""
    try:
        version = importlib_metadata.version("trainyard")
    except importlib_metadata.PackageNotFoundError:  # running from a source tree that was never installed
        version = "unknown"
    out: dict[str, Any] = {"trainyard": version}
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return out
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return out
    if commit.returncode == 0:
        out["git_commit"] = commit.stdout.strip()
        out["git_dirty"] = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    return out


def lineage(row: dict[str, Any], meta: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    """One version's lineage from its store row, its artifact metadata and its run."""
    return {
        "run_id": row.get("run_id"),
        "data_source": (run or {}).get("data_source"),
        "data_fingerprint": meta.get("data_fingerprint") or (run or {}).get("data_fingerprint"),
        "target": meta.get("target"),
        "family": meta.get("family") or row.get("family"),
        "params": meta.get("params"),
        "split": meta.get("split"),
        "code": meta.get("code") or {"trainyard": meta.get("libraries", {}).get("trainyard")},
        "libraries": meta.get("libraries"),
        "artifact_path": row.get("artifact_path"),
        "meta_sha256": row.get("meta_sha256"),
    }
