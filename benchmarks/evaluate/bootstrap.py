"""Bootstrap intervals: speed of the vectorised bootstrap vs a per-resample scikit-learn loop, and the
coverage of the 95% intervals in simulations with a known true value.

    python benchmarks/evaluate/bootstrap.py [--rows 5000] [--resamples 200] [--reps 400]

Prints two tables. Speed: the same resamples (same count matrices) scored both ways, all binary metrics.
Coverage: share of repetitions whose interval contains the true value (target 0.95).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trainyard.evaluation.bootstrap import bootstrap_weights, metric_intervals
from trainyard.metrics import METRICS, REPORTED
from trainyard.evaluation.scored import Scored
from trainyard.evaluation.weighted import WEIGHTED
from trainyard.tasks import Task


def binary_case(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    proba = np.c_[1 - p, p]
    return Scored(Task.BINARY, y, proba.argmax(axis=1), proba, np.array([0, 1]))


def speed(n, B):
    s = binary_case(n)
    names = REPORTED[Task.BINARY]
    W = np.vstack(list(bootstrap_weights(n, B, seed=1, strata=s.y)))
    t = time.perf_counter()
    for name in names:
        WEIGHTED[name](W, s.y, s.pred, s.proba)
    vec = time.perf_counter() - t
    t = time.perf_counter()
    classes = np.arange(2)
    for b in range(B):
        rows = np.repeat(np.arange(n), W[b].astype(int))
        for name in names:
            METRICS[name](s.y[rows], s.pred[rows], s.proba[rows], classes)
    loop = time.perf_counter() - t
    print(f"| {n} | {B} | {len(names)} | {vec:.2f} | {loop:.2f} | {loop / vec:.1f}x |")


def coverage(label, make, truth, metric, reps, B, rng):
    hits = 0
    for _ in range(reps):
        (row,) = metric_intervals(make(rng), [metric], n_boot=B, seed=int(rng.integers(1 << 30)))
        hits += row["ci_low"] <= truth <= row["ci_high"]
    print(f"| {label} | {reps} | {hits / reps:.3f} | {1.96 * np.sqrt(0.95 * 0.05 / reps):.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--reps", type=int, default=400)
    a = ap.parse_args()
    print("Speed: all 9 binary metrics on every resample (seconds)\n")
    print("| rows | resamples | metrics | vectorised | scikit-learn loop | ratio |\n|---|---|---|---|---|---|")
    speed(a.rows, a.resamples)
    speed(a.rows // 5, a.resamples)
    print("\nCoverage of the 95% percentile intervals (stratified bootstrap, 500 resamples each)\n")
    print("| case | repetitions | coverage | +- 95% simulation error |\n|---|---|---|---|")
    rng = np.random.default_rng(2026)

    def accuracy_case(n, acc=0.8):
        def make(r):
            y = r.integers(0, 2, n)
            pred = np.where(r.random(n) < acc, y, 1 - y)
            return Scored(Task.BINARY, y, pred, np.c_[1 - pred, pred].astype(float), np.array([0, 1]))
        return make

    def auc_case(n, shift=1.0):
        # scores N(0,1) for negatives and N(shift,1) for positives: true AUC = Phi(shift / sqrt(2))
        def make(r):
            y = r.integers(0, 2, n)
            z = r.normal(size=n) + shift * y
            p = 1 / (1 + np.exp(-z))
            return Scored(Task.BINARY, y, (p > 0.5).astype(int), np.c_[1 - p, p], np.array([0, 1]))
        return make

    def rmse_case(n, sigma=2.0):
        def make(r):
            y = r.normal(0, 5, n)
            return Scored(Task.REGRESSION, y, y + r.normal(0, sigma, n))
        return make

    from math import erf, sqrt

    true_auc = 0.5 * (1 + erf(1.0 / sqrt(2) / sqrt(2)))
    coverage("accuracy, n=50, true 0.8", accuracy_case(50), 0.8, "accuracy", a.reps, 500, rng)
    coverage("accuracy, n=200, true 0.8", accuracy_case(200), 0.8, "accuracy", a.reps, 500, rng)
    coverage("accuracy, n=1000, true 0.8", accuracy_case(1000), 0.8, "accuracy", a.reps, 500, rng)
    coverage(f"ROC AUC, n=200, true {true_auc:.3f}", auc_case(200), true_auc, "roc_auc", a.reps, 500, rng)
    coverage("RMSE, n=200, true 2.0", rmse_case(200), 2.0, "rmse", a.reps, 500, rng)


if __name__ == "__main__":
    main()
