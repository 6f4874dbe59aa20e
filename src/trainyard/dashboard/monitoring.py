"""What the Monitoring page shows.

When the model's artifact carries a training-time reference profile, the page
shows `trainyard.monitor`'s report (drift of every feature against training,
per period, and performance once labels arrive); `timeline_series` turns it
into chart series. For a model without a profile, `summarize` computes volume,
drift against the first time bucket of logged traffic (population stability
index) and performance per bucket from the prediction log, and the page says
which reference it used.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

BINS = 10
EPS = 1e-4


def bucket_size(times: list[datetime]) -> timedelta:
    span = (times[-1] - times[0]) if times else timedelta(0)
    if span <= timedelta(hours=6):
        return timedelta(minutes=15) if span > timedelta(hours=1) else timedelta(minutes=1)
    return timedelta(hours=1) if span <= timedelta(days=3) else timedelta(days=1)


def bucket_of(ts: datetime, size: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((ts - epoch) // size) * size


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected / max(expected.sum(), 1), EPS, None)
    actual = np.clip(actual / max(actual.sum(), 1), EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _numeric(values: list) -> np.ndarray:
    out = []
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x):
            out.append(x)
    return np.asarray(out, dtype=float)


class FeatureProfile:
    """Histogram edges (numeric) or category shares (categorical) of the reference window."""

    def __init__(self, values: list):
        nums = _numeric(values)
        self.numeric = len(nums) >= 0.9 * max(1, sum(v is not None for v in values)) and len(nums) > 0
        if self.numeric:
            bins = int(np.clip(len(nums) // 50, 2, BINS))  # fewer bins on a small reference: less PSI noise
            edges = np.unique(np.quantile(nums, np.linspace(0, 1, bins + 1)[1:-1]))
            self.edges = edges
            self.expected = self._hist(nums)
        else:
            counts = Counter("<missing>" if v is None else str(v) for v in values)
            self.categories = [c for c, _ in counts.most_common(30)]
            self.expected = self._cats(values)

    def _hist(self, nums: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, nums, side="right"), minlength=len(self.edges) + 1).astype(float)

    def _cats(self, values: list) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.categories)}
        counts = np.zeros(len(self.categories) + 1)
        for v in values:
            counts[index.get("<missing>" if v is None else str(v), len(self.categories))] += 1
        return counts

    def drift(self, values: list) -> float | None:
        if not values:
            return None
        actual = self._hist(_numeric(values)) if self.numeric else self._cats(values)
        return psi(self.expected, actual) if actual.sum() else None


def predicted_value(outputs: Any) -> Any:
    """The predicted label/value inside a logged `outputs` (a scalar, a list of one, or a dict)."""
    if isinstance(outputs, list) and len(outputs) == 1:
        outputs = outputs[0]
    if isinstance(outputs, dict):
        for key in ("prediction", "predicted", "label", "value", "y"):
            if key in outputs:
                return predicted_value(outputs[key])
        for key, value in outputs.items():
            if key.endswith("_predicted") or key.startswith("predict"):
                return predicted_value(value)
        return None
    return outputs


def _inputs(row: dict) -> dict:
    inputs = row.get("inputs")
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    return inputs if isinstance(inputs, dict) else {}


def summarize(predictions: list[dict], task: str | None = None, features: list[str] | None = None) -> dict[str, Any]:
    """Volume, drift and performance per time bucket for one model's logged predictions (oldest first)."""
    if not predictions:
        return {"buckets": [], "volume": [], "drift": {}, "performance": None, "reference": None, "labelled": 0}
    times = [r["created_at"] for r in predictions]
    size = bucket_size(times)
    keys = sorted({bucket_of(ts, size) for ts in times})
    index = {k: i for i, k in enumerate(keys)}
    volume = [0] * len(keys)
    per_bucket: list[list[dict]] = [[] for _ in keys]
    for r in predictions:
        i = index[bucket_of(r["created_at"], size)]
        volume[i] += 1
        per_bucket[i].append(r)
    names = features or sorted({k for r in predictions[:1000] for k in _inputs(r)})
    reference_rows = per_bucket[0]
    drift: dict[str, list[float | None]] = {}
    for name in names:
        profile = FeatureProfile([_inputs(r).get(name) for r in reference_rows])
        drift[name] = [profile.drift([_inputs(r).get(name) for r in bucket]) for bucket in per_bucket]
    performance, labelled = _performance(per_bucket, task)
    return {
        "bucket_seconds": size.total_seconds(), "buckets": [k.isoformat() for k in keys], "volume": volume, "drift": drift,
        "performance": performance, "labelled": labelled,
        "reference": f"the first {int(size.total_seconds() // 60)}-minute bucket of logged traffic ({len(reference_rows)} predictions)",
    }


def _performance(per_bucket: list[list[dict]], task: str | None) -> tuple[dict | None, int]:
    pairs = [[(predicted_value(r["outputs"]), r["label"]) for r in bucket if r.get("label") is not None] for bucket in per_bucket]
    labelled = sum(len(p) for p in pairs)
    if not labelled:
        return None, 0
    regression = task == "regression" or (task is None and all(_numeric([y]).size for b in pairs for _, y in b))
    values: list[float | None] = []
    for bucket in pairs:
        if not bucket:
            values.append(None)
        elif regression:
            err = [abs(float(p) - float(y)) for p, y in bucket if _numeric([p]).size and _numeric([y]).size]
            values.append(float(np.mean(err)) if err else None)
        else:
            values.append(float(np.mean([str(p) == str(y) for p, y in bucket])))
    return {"metric": "mae" if regression else "accuracy", "values": values, "counts": [len(b) for b in pairs]}, labelled


def timeline_series(report: dict) -> dict[str, Any]:
    """Chart series from a trainyard.monitor report: periods, rows, drift score per feature, the metric per period."""
    periods = (report.get("timeline") or {}).get("periods") or []
    names = [r["column"] for r in report.get("features", [])]
    perf = report.get("performance") or {}
    by_period = {p["period"]: p for p in perf.get("by_period") or []}
    metric = perf.get("metric")
    return {
        "periods": [p["period"] for p in periods],
        "rows": [p["rows"] for p in periods],
        "drifted": [p.get("drifted", []) for p in periods],
        "scores": {n: [p["scores"].get(n) for p in periods] for n in names},
        "metric": metric,
        "performance": [(by_period.get(p["period"]) or {}).get("metrics", {}).get(metric) for p in periods] if by_period else None,
    }
