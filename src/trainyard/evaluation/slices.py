"""Slices: metrics on user-chosen subsets of rows, and the worst subsets found automatically.

A user slice is a pandas query (`"age > 50 and plan == 'monthly'"`) or `column=value`.
Automatic slices are every frequent value of a categorical column and every
quartile of a numeric one; they are ranked by how much worse the model's error
(error rate, or mean absolute error for regression) is there than overall, and
each reported slice carries a bootstrap interval so a user can see whether the
gap is more than noise.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from trainyard.errors import ConfigError
from trainyard.evaluation.bootstrap import metric_intervals, point_metrics
from trainyard.evaluation.scored import Scored

_EQUALS = re.compile(r"^\s*([^=<>!]+?)\s*=\s*([^=].*?)\s*$")


def error_name(scored: Scored) -> str:
    return "mae" if scored.task.value == "regression" else "accuracy"


def select(frame: pd.DataFrame, expression: str) -> np.ndarray:
    """Row positions where `expression` holds."""
    m = _EQUALS.match(expression)
    try:
        if m and m.group(1) in frame.columns:
            col, value = m.group(1), m.group(2).strip("'\"")
            mask = frame[col].astype(str).str.strip() == value
        else:
            mask = frame.eval(expression)
        return np.flatnonzero(np.asarray(mask, dtype=bool))
    except Exception as exc:  # pandas raises many kinds for a bad expression
        raise ConfigError(f"Cannot evaluate the slice {expression!r}: {exc}.",
                          "write a pandas query such as \"age > 50 and plan == 'monthly'\", or column=value.") from None


def slice_row(scored: Scored, rows: np.ndarray, name: str, metric: str, *, n_boot: int, seed: int, overall: dict, confidence: float = 0.95) -> dict:
    sub = scored.subset(rows)
    err = error_name(scored)
    names = list(dict.fromkeys([err, metric]))
    found = {r["metric"]: r for r in metric_intervals(sub, names, n_boot=n_boot, seed=seed, confidence=confidence)} if len(rows) >= 2 else {}
    entry = {"slice": name, "rows": int(len(rows)), "share": float(len(rows) / max(scored.n, 1))}
    for m in names:
        r = found.get(m)
        entry[m] = None if r is None else {"value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
    e = entry[err]
    if e is not None:
        worse = e["value"] < overall[err] if err == "accuracy" else e["value"] > overall[err]
        outside = e["ci_high"] < overall[err] if err == "accuracy" else e["ci_low"] > overall[err]
        entry["worse_than_overall"] = bool(worse)
        entry["significant"] = bool(outside)
    return entry


def user_slices(scored: Scored, frame: pd.DataFrame, expressions: list[str], metric: str, *, n_boot: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> list[dict]:
    overall = _overall(scored, metric)
    return [slice_row(scored, select(frame, e), e, metric, n_boot=n_boot, seed=seed, overall=overall, confidence=confidence) for e in expressions]


def candidate_slices(frame: pd.DataFrame, columns: list[str], min_rows: int) -> list[tuple[str, np.ndarray]]:
    out = []
    if len(frame) <= min_rows:  # no slice could be both big enough and smaller than the whole set
        return out
    for col in columns:
        s = frame[col].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > 8:
            bins = pd.qcut(s, 4, duplicates="drop")
            for interval in bins.cat.categories:
                rows = np.flatnonzero((bins == interval).to_numpy())
                out.append((f"{col} in {interval}", rows))
            missing = np.flatnonzero(s.isna().to_numpy())
            if len(missing):
                out.append((f"{col} is missing", missing))
        elif s.nunique(dropna=True) <= 50:
            values = s.astype(object).where(s.notna(), None)
            for v in values.dropna().unique():
                out.append((f"{col} = {v}", np.flatnonzero((values == v).to_numpy())))
            missing = np.flatnonzero(values.isna().to_numpy())
            if len(missing):
                out.append((f"{col} is missing", missing))
    return [(name, rows) for name, rows in out if len(rows) >= min_rows and len(rows) < len(frame)]


def worst_slices(scored: Scored, frame: pd.DataFrame, columns: list[str], metric: str, *, k: int = 5, min_rows: int | None = None,
                 n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """The k single-column slices with the largest error gap to the whole set."""
    min_rows = min_rows or max(30, int(0.02 * scored.n))
    err = error_name(scored)
    overall = _overall(scored, metric)
    candidates = candidate_slices(frame, columns, min_rows)
    if err == "accuracy":
        wrong = (scored.y != scored.pred).astype(float)
        gap = [wrong[rows].mean() - (1 - overall[err]) for _, rows in candidates]
    else:
        absolute = np.abs(scored.y - scored.pred)
        gap = [absolute[rows].mean() - overall[err] for _, rows in candidates]
    order = np.argsort(-np.asarray(gap), kind="mergesort")[:k] if candidates else []
    found = [slice_row(scored, candidates[i][1], candidates[i][0], metric, n_boot=n_boot, seed=seed, overall=overall, confidence=confidence)
             for i in order if gap[i] > 0]
    return {"error_metric": err, "overall": overall, "min_rows": min_rows, "searched": len(candidates), "slices": found}


def _overall(scored: Scored, metric: str) -> dict:
    return point_metrics(scored, list(dict.fromkeys([error_name(scored), metric])))
