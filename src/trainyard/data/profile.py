"""Reference profiles: a compact summary of every feature and of the predictions, kept with the model.

A profile holds, per column, a layout and counts. Numeric (and datetime) columns: the distinct values at every
percentile of the reference (`edges`) and the number of rows in each bin between them, plus missing count,
sum, sum of squares, min and max. Categorical (and boolean) columns: the reference's categories (up to
`MAX_CATEGORIES`, most frequent first) with their counts, the count of values outside them and the missing
count. A window of new rows is counted against the same layout (`count_frame`), so comparing the two needs
only the counts: a few KB per column, never the data. Counting is vectorised per column and works chunk by
chunk (`Counter.update`), so a table larger than memory can be profiled as a stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.binning import Binner, quantile_edges
from trainyard.data.schema import as_datetime, as_numeric

FORMAT = 1
PROFILE_FILE = "reference/profile.json"
SAMPLE_FILE = "reference/sample.parquet"
MAX_CATEGORIES = 500
EDGE_SAMPLE = 100_000  # rows used to place the quantile edges (counts always use every row)
SAMPLE_ROWS = 2000  # reference rows kept for the multivariate (domain classifier) check
UNSEEN_EXAMPLES = 20
THREADS = 2


def column_kinds(schema) -> dict[str, str]:
    """Monitored features and how: numeric and datetime columns as 'numeric', categorical and boolean as 'categorical'."""
    kinds = {}
    for c in schema.columns:
        if c.name not in schema.features():
            continue
        if c.role in ("numeric", "datetime"):
            kinds[c.name] = "datetime" if c.role == "datetime" else "numeric"
        elif c.role in ("categorical", "boolean"):
            kinds[c.name] = "categorical"
    return kinds


def numeric_values(s: pd.Series, kind: str = "numeric") -> np.ndarray:
    """A float array (NaN for missing) without copying when the column already is float."""
    if kind == "datetime":
        d = as_datetime(s)
        return np.where(d.isna(), np.nan, d.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9)
    if s.dtype in (np.float32, np.float64):
        return s.to_numpy()
    return as_numeric(s).to_numpy(dtype=np.float64)


def category_counts(s: pd.Series) -> dict[str, int]:
    """Counts of each distinct non-missing value, keyed by its text form (1 and 1.0 are the same key)."""
    vc = s.value_counts(dropna=True, sort=False)
    out: dict[str, int] = {}
    for value, n in zip(vc.index.tolist(), vc.to_numpy().tolist()):
        key = category_key(value)
        out[key] = out.get(key, 0) + int(n)
    return out


def category_key(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def layout_of(df: pd.DataFrame, kinds: dict[str, str], seed: int = 0) -> dict[str, dict]:
    """Edges (numeric) or categories (categorical) of every column, from `df` (a sample is enough for edges)."""
    rows = df if len(df) <= EDGE_SAMPLE else df.sample(EDGE_SAMPLE, random_state=seed)
    out = {}
    for name, kind in kinds.items():
        if name not in df.columns:
            continue
        if kind == "categorical":
            counts = category_counts(df[name])
            top = sorted(counts, key=lambda k: (-counts[k], k))[:MAX_CATEGORIES]
            out[name] = {"kind": kind, "categories": top}
        else:
            out[name] = {"kind": kind, "edges": quantile_edges(numeric_values(rows[name], kind)).tolist()}
    return out


class Counter:
    """Accumulates counts of chunks of rows against a fixed layout."""

    def __init__(self, layout: dict[str, dict]):
        self.layout = layout
        self.binners = {n: Binner(c["edges"]) for n, c in layout.items() if c["kind"] != "categorical"}
        self.index = {n: {k: i for i, k in enumerate(c["categories"])} for n, c in layout.items() if c["kind"] == "categorical"}
        self.state: dict[str, dict] = {}
        self.n_rows = 0

    def update(self, df: pd.DataFrame) -> "Counter":
        self.n_rows += len(df)
        names = [n for n in self.layout if n in df.columns]
        absent = [n for n in self.layout if n not in df.columns]
        if len(df) * len(names) >= 1_000_000 and THREADS > 1:
            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(lambda n: self._count(n, df[n]), names))
        else:
            results = [self._count(n, df[n]) for n in names]
        for name, partial in zip(names, results):
            self._merge(name, partial)
        for name in absent:  # a column the new rows lack is entirely missing
            self._merge(name, self._empty(name) | {"n": len(df), "missing": len(df)})
        return self

    def _empty(self, name: str) -> dict:
        if name in self.binners:
            return {"n": 0, "missing": 0, "counts": np.zeros(self.binners[name].n_bins, np.int64), "sum": 0.0, "sumsq": 0.0,
                    "min": None, "max": None}
        return {"n": 0, "missing": 0, "counts": np.zeros(len(self.index[name]), np.int64), "unseen": 0, "unseen_values": {}}

    def _count(self, name: str, s: pd.Series) -> dict:
        out = self._empty(name)
        out["n"] = len(s)
        if name in self.binners:
            x = numeric_values(s, self.layout[name]["kind"])
            out["counts"], out["missing"] = self.binners[name].count(x)
            if out["missing"] < len(x):
                present = x if out["missing"] == 0 else x[~np.isnan(x)]
                out["sum"] = float(present.sum(dtype=np.float64))  # float64 accumulators, no float64 copy
                out["sumsq"] = float(np.square(present).sum(dtype=np.float64))
                out["min"], out["max"] = float(present.min()), float(present.max())
            return out
        counts = category_counts(s)
        index = self.index[name]
        out["missing"] = len(s) - sum(counts.values())
        for key, n in counts.items():
            i = index.get(key)
            if i is None:
                out["unseen"] += n
                out["unseen_values"][key] = n
            else:
                out["counts"][i] += n
        return out

    def _merge(self, name: str, part: dict) -> None:
        cur = self.state.get(name)
        if cur is None:
            self.state[name] = part
            return
        for key in ("n", "missing", "counts", "sum", "sumsq", "unseen"):
            if key in part:
                cur[key] = cur[key] + part[key]
        for key, pick in (("min", min), ("max", max)):
            if part.get(key) is not None:
                cur[key] = part[key] if cur.get(key) is None else pick(cur[key], part[key])
        if "unseen_values" in part:
            for k, n in part["unseen_values"].items():
                cur["unseen_values"][k] = cur["unseen_values"].get(k, 0) + n

    def result(self) -> dict[str, dict]:
        out = {}
        for name, layout in self.layout.items():
            st = dict(self.state.get(name) or self._empty(name))
            st["counts"] = np.asarray(st["counts"]).tolist()
            if "unseen_values" in st:
                top = sorted(st["unseen_values"].items(), key=lambda kv: -kv[1])[:UNSEEN_EXAMPLES]
                st["unseen_values"] = dict(top)
            out[name] = {**layout, **st}
        return out


def count_frame(layout: dict[str, dict], data: pd.DataFrame | Iterable[pd.DataFrame]) -> dict[str, dict]:
    """Counts of a table (or of an iterable of chunks) against `layout`."""
    counter = Counter(layout)
    for chunk in ([data] if isinstance(data, pd.DataFrame) else data):
        counter.update(chunk)
    return counter.result()


def profile_frame(data: pd.DataFrame | Iterable[pd.DataFrame], kinds: dict[str, str]) -> dict[str, dict]:
    """Layout and counts of a table; for an iterable of chunks the layout comes from the first chunk."""
    chunks = iter([data] if isinstance(data, pd.DataFrame) else data)
    first = next(chunks)
    counter = Counter(layout_of(first, kinds)).update(first)
    for chunk in chunks:
        counter.update(chunk)
    return counter.result()


def prediction_columns(model, X: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The model's outputs as monitored columns: the predicted label (or value) and each class probability."""
    if model.task.is_classification:
        proba = model.predict_proba_array(X)
        out = {"predicted": pd.Series(model.classes[proba.argmax(axis=1)], index=X.index).map(category_key)}
        kinds = {"predicted": "categorical"}
        shown = model.classes[1:] if len(model.classes) == 2 else model.classes
        for c in shown[:20]:
            i = int(np.flatnonzero(model.classes == c)[0])
            out[f"proba_{c}"] = pd.Series(proba[:, i], index=X.index)
            kinds[f"proba_{c}"] = "numeric"
        return pd.DataFrame(out), kinds
    return pd.DataFrame({"predicted": np.asarray(model.predict(X), dtype=float)}, index=X.index), {"predicted": "numeric"}


def build_reference(model, train_rows: pd.DataFrame, holdout_rows: pd.DataFrame | None = None) -> dict:
    """The profile stored with a model: features from the rows it was fitted on, predictions on held-out rows
    (in-sample predictions of a boosted model are more confident than anything it will see live)."""
    kinds = column_kinds(model.schema)
    pred_rows = holdout_rows if holdout_rows is not None and len(holdout_rows) else train_rows
    preds, pred_kinds = prediction_columns(model, pred_rows)
    return {
        "format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(), "n_rows": len(train_rows),
        "task": model.task.value, "target": model.target,
        "columns": profile_frame(train_rows, kinds),
        "predictions": {"n_rows": len(pred_rows), "columns": profile_frame(preds, pred_kinds)},
    }


def reference_sample(rows: pd.DataFrame, kinds: dict[str, str], n: int = SAMPLE_ROWS, seed: int = 0) -> pd.DataFrame:
    """A few reference rows in a plain form (floats and strings) for the domain classifier."""
    rows = rows if len(rows) <= n else rows.sample(n, random_state=seed)
    return monitored_frame(rows, kinds)


def monitored_frame(rows: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    out = {}
    for name, kind in kinds.items():
        if name not in rows.columns:
            out[name] = np.nan if kind != "categorical" else None
        elif kind == "categorical":
            s = rows[name]
            out[name] = s.map(category_key).where(s.notna(), None).astype(object)
        else:
            out[name] = numeric_values(rows[name], kind)
    return pd.DataFrame(out, index=rows.index)


def write_reference(directory: Path, model, train_rows: pd.DataFrame, holdout_rows: pd.DataFrame | None = None,
                    sample_rows: int = SAMPLE_ROWS) -> dict[str, Path]:
    """Write profile.json (and a small row sample unless `sample_rows` is 0) under `directory`; returns the
    {artifact-relative name: path} mapping that `save_artifact(extra_files=...)` hashes into the artifact."""
    directory = Path(directory)
    (directory / "reference").mkdir(parents=True, exist_ok=True)
    files = {PROFILE_FILE: directory / PROFILE_FILE}
    files[PROFILE_FILE].write_text(json.dumps(build_reference(model, train_rows, holdout_rows), separators=(",", ":")))
    if sample_rows:
        sample = reference_sample(train_rows, column_kinds(model.schema), sample_rows)
        sample.to_parquet(directory / SAMPLE_FILE, index=False)
        files[SAMPLE_FILE] = directory / SAMPLE_FILE
    return files


def read_reference(artifact_dir: Path) -> tuple[dict | None, pd.DataFrame | None]:
    """(profile, row sample) stored in a verified artifact; None for what it lacks (models trained before monitoring)."""
    artifact_dir = Path(artifact_dir)
    profile = json.loads((artifact_dir / PROFILE_FILE).read_text()) if (artifact_dir / PROFILE_FILE).is_file() else None
    sample = pd.read_parquet(artifact_dir / SAMPLE_FILE) if (artifact_dir / SAMPLE_FILE).is_file() else None
    return profile, sample
