"""The artifact format: a directory with `meta.json` and the model files.

`meta.json` records the task, schema, metrics, library versions, the training
data's fingerprint and the SHA-256 of every other file. `load_artifact`
recomputes those hashes (and, when the store knows it, the hash of meta.json
itself) and refuses an artifact that does not match, before unpickling anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import uuid
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Callable

from trainyard.errors import ArtifactError
from trainyard.registry.lineage import code_version
from trainyard.registry.pause import pause_at

FORMAT_VERSION = 1
META = "meta.json"
MODEL_FILE = "model.joblib"
TRACKED_LIBRARIES = ("trainyard", "scikit-learn", "lightgbm", "xgboost", "xgboost-cpu", "catboost", "pandas", "numpy", "torch")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def save_artifact(model, directory: Path, meta: dict, extra_files: dict[str, Path] | None = None) -> str:
    """Write the artifact atomically (to a temporary sibling, then rename); returns meta.json's SHA-256."""
    import joblib

    directory = Path(directory)
    remove_stray_temporaries(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        if model is not None:  # None: the extra files are the model (a language model's Hugging Face directory)
            joblib.dump(model, tmp / MODEL_FILE, compress=3)
        for name, src in (extra_files or {}).items():
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        full_meta = {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "libraries": library_versions(),
            "code": code_version(),
            "platform": f"{platform.system()} {platform.machine()}",
            **meta,
            "files": files,
        }
        (tmp / META).write_text(json.dumps(full_meta, indent=2, default=str))
        digest = sha256_file(tmp / META)
        _fsync_dir(tmp)
        pause_at("artifact-writing")
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest


def remove_stray_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary folders a killed earlier attempt at this artifact left beside it (artifact folders
    are named by run id, so only an attempt of the same run writes these names); returns what was removed."""
    directory = Path(directory)
    if not directory.parent.is_dir():
        return []
    stray = [p for p in directory.parent.glob(f".{directory.name}.tmp-*") if p.is_dir()]
    for path in stray:
        shutil.rmtree(path, ignore_errors=True)
    return stray


def read_meta(directory: Path, expected_meta_sha256: str | None = None) -> dict:
    directory = Path(directory)
    meta_path = directory / META
    if not meta_path.is_file():
        raise ArtifactError(f"The model artifact at {directory} is missing or incomplete (no {META}).",
                            "retrain the model, or restore the workspace's artifacts folder from a backup.")
    if expected_meta_sha256 and sha256_file(meta_path) != expected_meta_sha256:
        raise ArtifactError(f"The model artifact at {directory} has been altered: {META} does not match the registry's hash.",
                            "do not edit artifacts by hand; retrain or restore the original files.")
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{meta_path} is not valid JSON.", "restore the original artifact or retrain.") from exc


def verify_artifact(directory: Path, expected_meta_sha256: str | None = None) -> dict:
    """Check every file's hash against meta.json; return the metadata."""
    directory = Path(directory)
    meta = read_meta(directory, expected_meta_sha256)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(f"The artifact at {directory} uses format {meta['format_version']}, newer than this trainyard understands.",
                            "upgrade trainyard.")
    for name, digest in meta.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"The model artifact at {directory} is missing the file {name}.", "restore the artifact or retrain.")
        if sha256_file(path) != digest:
            raise ArtifactError(f"The model artifact at {directory} has been altered: {name} does not match its recorded SHA-256.",
                                "do not edit artifacts by hand; retrain or restore the original files.")
    return meta


LOADERS: dict[str, "Callable[[Path, dict], object]"] = {}


def register_loader(kind: str):
    """Decorator: `loader(directory, meta) -> model` opens artifacts whose meta.json says `"kind": kind`.

    Each artifact kind (language models, reward models, RL policies, retrieval indexes) registers its own
    loader from its own package, so the registry never imports the packages above it. A loader is only
    called after every file's hash has been checked."""
    def decorate(loader):
        LOADERS[kind] = loader
        return loader
    return decorate


def load_artifact(directory: Path, expected_meta_sha256: str | None = None):
    """(model, meta) after verification; the pickle is only opened once its hash matches."""
    import joblib

    meta = verify_artifact(directory, expected_meta_sha256)
    kind = meta.get("kind")
    if kind and kind != "table-model":
        if kind not in LOADERS:
            raise ArtifactError(f"The artifact at {directory} is of kind {kind!r}, which this trainyard cannot open "
                                f"(known kinds: {', '.join(sorted(LOADERS)) or 'none'}).",
                                "upgrade trainyard, or install the extra that provides this kind of model.")
        return LOADERS[kind](Path(directory), meta), meta
    return joblib.load(Path(directory) / MODEL_FILE), meta


def _fsync_dir(path: Path) -> None:
    if sys.platform.startswith("win"):
        return
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
