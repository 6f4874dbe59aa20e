"""Bootstrap confidence intervals, vectorised: all resamples of a metric in a few matrix products.

Resamples are drawn as count vectors (rows x how often drawn), stratified by
class for classification so every resample keeps the test set's class mix, with
a fixed seed so a report is reproducible. Intervals are percentile intervals.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from trainyard.evaluation.scored import Scored
from trainyard.evaluation.weighted import PER_CLASS, WEIGHTED
from trainyard.metrics import METRICS, REPORTED

MAX_CELLS = 4_000_000  # rows x resamples held in memory at once (32 MB of float64)


def bootstrap_weights(n: int, n_boot: int, seed: int = 0, strata: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Chunks of resample count matrices, shape (b, n), b <= n_boot, summing to n_boot rows in all."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    chunk = max(1, min(n_boot, MAX_CELLS // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        W = np.zeros((b, n))
        for idx in groups:
            m = len(idx)
            draws = rng.integers(0, m, size=(b, m)) + np.arange(b)[:, None] * m
            W[:, idx] = np.bincount(draws.ravel(), minlength=b * m).reshape(b, m)
        yield W
        done += b


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if len(samples) < 10:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return float(lo), float(hi)


def point_metrics(scored: Scored, names: list[str]) -> dict[str, float]:
    """The metrics on the rows as they are (all weights one)."""
    ones = np.ones((1, scored.n))
    return {m: float(WEIGHTED[m](ones, scored.y, scored.pred, scored.proba)[0]) for m in names}


def metric_intervals(scored: Scored, names: list[str] | None = None, *, baseline: Scored | None = None,
                     n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> list[dict]:
    """For each metric: value, CI, and (when given) the baseline's value and the paired CI of model - baseline.

    A metric that is undefined on these rows (e.g. ROC AUC with one class) is left out.
    """
    names = [m for m in (names or REPORTED[scored.task]) if m in WEIGHTED]
    funcs = {name: WEIGHTED[name] for name in names}
    args = (scored.y, scored.pred, scored.proba)
    point = point_metrics(scored, names)
    base_point = point_metrics(baseline, names) if baseline else {}
    keep = [m for m in names if np.isfinite(point[m])]
    samples = {m: [] for m in keep}
    deltas = {m: [] for m in keep}
    strata = scored.y if scored.task.is_classification else None
    for W in bootstrap_weights(scored.n, n_boot, seed, strata):
        for m in keep:
            s = funcs[m](W, *args)
            samples[m].append(s)
            if baseline is not None:
                deltas[m].append(s - funcs[m](W, baseline.y, baseline.pred, baseline.proba))
    rows = []
    for m in keep:
        s = np.concatenate(samples[m])
        lo, hi = percentile_interval(s, confidence)
        row = {"metric": m, "value": point[m], "ci_low": lo, "ci_high": hi, "std_error": float(np.nanstd(s)),
               "greater_is_better": METRICS[m].greater_is_better}
        if baseline is not None:
            row["baseline"] = base_point[m] if np.isfinite(base_point[m]) else None
            d = np.concatenate(deltas[m])
            row["delta_ci_low"], row["delta_ci_high"] = percentile_interval(d, confidence)
            row["beats_baseline"] = _beats(row)
        rows.append(row)
    return rows


def _beats(row: dict) -> bool | None:
    """True when the whole interval of (model - baseline) lies on the better side of zero."""
    lo, hi = row["delta_ci_low"], row["delta_ci_high"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return bool(lo > 0) if row["greater_is_better"] else bool(hi < 0)


def per_class_intervals(scored: Scored, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> list[dict]:
    """Precision, recall and F1 of each class against the rest, with CIs and the class's support."""
    ones = np.ones((1, scored.n))
    k = len(scored.classes)
    samples = {(c, m): [] for c in range(k) for m in PER_CLASS}
    for W in bootstrap_weights(scored.n, n_boot, seed, scored.y):
        for (c, m), acc in samples.items():
            acc.append(PER_CLASS[m](W, scored.y, scored.pred, c=c))
    rows = []
    for c in range(k):
        row = {"class": str(scored.classes[c]), "support": int((scored.y == c).sum())}
        for m, f in PER_CLASS.items():
            row[m] = float(f(ones, scored.y, scored.pred, c=c)[0])
            row[f"{m}_ci"] = list(percentile_interval(np.concatenate(samples[(c, m)]), confidence))
        rows.append(row)
    return rows
