"""Every version of a model with its aliases, tags, metrics and lineage, for `trainyard versions`."""

from __future__ import annotations

from typing import Any

from trainyard.errors import ArtifactError
from trainyard.registry.artifact import read_meta
from trainyard.registry.lineage import lineage


def describe_versions(ws, name: str) -> list[dict[str, Any]]:
    """Every version of `name`, newest first, with aliases, tags, metrics and lineage (meta.json is hash-checked)."""
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
