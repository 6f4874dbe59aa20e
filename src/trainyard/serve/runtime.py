"""A served model version, and the slot that hot-swaps it when its alias moves.

`ServedModel` is immutable once built: the verified model, its validator and its compiled fast path.
`ModelSlot.current` is swapped by one reference assignment after the new version is fully loaded, so a
request that already took `slot.current` finishes on the version it started with and no request sees a
half-loaded model.
"""

from __future__ import annotations

import gc
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainyard.registry.artifact import load_artifact
from trainyard.registry.store import parse_ref
from trainyard.serve.compiling import TreeCompilation, compile_served
from trainyard.serve.validate import RowValidator, ValidationPolicy, build_validator
import trainyard.kinds  # noqa: F401  (artifact loaders)


@dataclass
class ServedModel:
    name: str
    version: int
    model: Any
    meta: dict
    validator: RowValidator
    fast: Any = None  # rows -> array, or None
    features: list[str] = field(default_factory=list)
    loaded_at: float = field(default_factory=time.time)
    compilation: TreeCompilation | None = None  # LightGBM trees becoming machine code (None: not asked)

    @property
    def classes(self) -> list | None:
        return None if self.model.classes is None else self.model.classes.tolist()

    def raw_predict(self, rows: list[dict]) -> np.ndarray:
        """Probabilities (classification) or values (regression) for validated rows."""
        if self.fast is not None:
            return self.fast(rows)
        import pandas as pd

        X = pd.DataFrame.from_records(rows, columns=self.features)
        if self.model.task.is_classification:
            return self.model.predict_proba_array(X)
        return self.model.predict(X)

    def outputs(self, rows: list[dict]) -> list[dict]:
        """[{"prediction": ..., "probabilities": {class: p}}] (probabilities for classifiers only)."""
        raw = self.raw_predict(rows)
        classes = self.classes
        if classes is None:
            return [{"prediction": float(v)} for v in raw.tolist()]
        best = raw.argmax(axis=1).tolist()
        keys = [str(c) for c in classes]
        return [{"prediction": classes[b], "probabilities": dict(zip(keys, p))} for b, p in zip(best, raw.tolist())]

    def info(self) -> dict:
        meta = self.meta
        cols = []
        v = self.validator
        for c in self.model.schema.columns:
            if c.name not in self.features:
                continue
            cols.append({"name": c.name, "role": c.role, "required": c.name in v.required, "min": c.min, "max": c.max,
                         "categories": (c.categories or [])[:100] if c.role in ("categorical", "boolean") else None,
                         "missing_rate_in_training": c.missing_rate})
        return {
            "name": self.name, "version": self.version, "task": meta.get("task"), "target": meta.get("target"),
            "family": meta.get("family"), "metric": meta.get("metric"), "classes": self.classes,
            "metrics": meta.get("metrics"), "features": cols, "ignored_columns": v.ignored,
            "policy": {"ranges_checked": v.policy.ranges, "categories_checked": v.policy.categories,
                       "missing_optional_columns": "treated as missing and imputed as in training",
                       "required_columns": "columns with no missing values in training" if not v.policy.allow_missing else "none",
                       "max_batch_rows": v.policy.max_batch},
            "fast_path": self.fast is not None,
            "compiled_trees": self.compilation.info() if self.compilation is not None else {"state": "off"},
            "data_fingerprint": meta.get("data_fingerprint"),
            "run_id": meta.get("run_id"), "code": meta.get("code"), "loaded_at": self.loaded_at,
        }


def schema_title(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"


def load_served(ws, name: str, version: int, policy: ValidationPolicy, compile_trees: bool = False) -> ServedModel:
    """Load and verify one version (hashes checked before unpickling) and build its fast path; with
    `compile_trees`, start compiling its LightGBM trees to machine code in the background (`serve.compiling`)."""
    row = ws.store.get_model(name, version)
    model, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
    single_threaded(model.pipeline)
    validator = build_validator(model.schema, policy, title=f"{schema_title(name)}V{version}Row")
    fast = model.rows_fn()  # the model's own few-rows path, shared with in-process predict (None: the pipeline serves)
    compilation = compile_served(f"{name}@{version}", fast) if compile_trees else None
    return ServedModel(name, version, model, meta, validator, fast, model.schema.features(), compilation=compilation)


def single_threaded(estimator) -> None:
    """Predict with one thread per request: a server runs many requests at once, and an OpenMP team of
    n_jobs=-1 threads per request oversubscribes the cores."""
    try:
        keys = [k for k in estimator.get_params(deep=True) if k == "n_jobs" or k.endswith("__n_jobs")]
        estimator.set_params(**{k: 1 for k in keys})
    except Exception:  # not a scikit-learn estimator tree: leave it alone
        pass


class ModelSlot:
    """What `churn`, `churn@3` or `churn@production` means right now, kept current by `refresh()`."""

    def __init__(self, ws, ref: str, policy: ValidationPolicy, compile_trees: bool):
        self.ws, self.ref, self.policy, self.compile_trees = ws, ref, policy, compile_trees
        self.name, self.selector = parse_ref(ref)
        self.pinned = self.selector is not None and self.selector.isdigit()
        self.current: ServedModel | None = None
        self.last_error: str | None = None
        self.swaps = 0
        self._lock = threading.Lock()

    def stop(self) -> None:
        """The server is stopping: stop compiling the current version's trees (its child process is killed)."""
        current = self.current
        if current is not None and current.compilation is not None:
            current.compilation.stop()

    def wanted_version(self) -> int | None:
        store = self.ws.store
        if self.pinned:
            return int(self.selector)
        if self.selector in (None, "latest"):
            return store.latest_version(self.name)
        return store.alias_version(self.name, self.selector)

    def refresh(self) -> bool:
        """Load the version the reference points at if it changed; True when a swap happened.

        On any failure (alias removed, artifact tampered, store unreachable) the current version keeps
        serving and the problem is kept in `last_error` for /ready and /metrics."""
        with self._lock:
            try:
                wanted = self.wanted_version()
                if wanted is None:
                    raise LookupError(f"'{self.ref}' no longer points at any version")
                if self.current is not None and self.current.version == wanted:
                    self.last_error = None
                    return False
                served = load_served(self.ws, self.name, wanted, self.policy, self.compile_trees)
            except Exception as exc:  # keep serving what we have
                self.last_error = f"{type(exc).__name__}: {getattr(exc, 'problem', exc)}"
                if self.current is None:
                    raise
                print(f"trainyard serve: keeping {self.name}@{self.current.version}: {self.last_error}", file=sys.stderr)
                return False
            previous = self.current
            self.current = served  # the swap: one reference assignment
            gc.freeze()  # keep the new version's objects out of full collections too (see app.freeze_heap)
            self.last_error = None
            if previous is not None:
                if previous.compilation is not None:
                    previous.compilation.stop()  # nobody will ask the old version's trees any more
                self.swaps += 1
                print(f"trainyard serve: {self.ref} switched from version {previous.version} to {served.version}", file=sys.stderr)
            return True


class Poller:
    """Refreshes every slot that follows an alias (or the latest version) every `interval` seconds."""

    def __init__(self, slots: list[ModelSlot], interval: float):
        self.slots = [s for s in slots if not s.pinned]
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainyard-alias-poller", daemon=True)

    def start(self) -> None:
        if self.slots and self.interval > 0:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for slot in self.slots:
                try:
                    slot.refresh()
                except Exception as exc:  # refresh already keeps the old version; never kill the thread
                    print(f"trainyard serve: alias poll failed: {exc}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
