"""Where a model version came from: code version, training data, run and parameters."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """trainyard's version, plus the git commit (and whether the tree was dirty) when running from a checkout."""
    from trainyard import __version__

    out: dict[str, Any] = {"trainyard": __version__}
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


def describe_versions(ws, name: str) -> list[dict[str, Any]]:
    """Every version of `name`, newest first, with aliases, tags, metrics and lineage (meta.json is hash-checked)."""
    from trainyard.errors import ArtifactError
    from trainyard.registry.artifact import read_meta

    store = ws.store
    store.resolve_model(name)  # clear error for an unknown name
    out = []
    for row in store.list_models(name):
        try:
            meta = read_meta(ws.home / row["artifact_path"], row["meta_sha256"])
            problem = None
        except ArtifactError as exc:
            meta, problem = {}, exc.problem
        try:
            run = store.get_run(row["run_id"]) if row.get("run_id") else None
        except Exception:  # the run may have been pruned; lineage still comes from meta.json
            run = None
        out.append({**row, "tags": row.get("tags") or {}, "lineage": lineage(row, meta, run), "artifact_problem": problem})
    return out
