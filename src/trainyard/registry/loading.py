"""Open a registered model by its ref (NAME, NAME@VERSION, NAME@ALIAS) after checking its hashes.

Only kinds whose packages registered a loader can be opened (trainyard.kinds imports them all).
"""

from __future__ import annotations

import os

from trainyard.registry.artifact import load_artifact
from trainyard.registry.workspace import Workspace


def load_with_meta(ref: str, workspace: str | os.PathLike | None = None) -> tuple[object, dict]:
    """(model, meta.json with its "version") of the model `ref` in the workspace."""
    ws = Workspace.resolve(workspace)
    row = ws.store.resolve_model(ref)
    model, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
    meta["version"] = row["version"]
    return model, meta
