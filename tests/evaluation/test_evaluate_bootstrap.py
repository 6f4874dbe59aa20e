"""Vectorised weighted metrics equal scikit-learn, resample by resample; intervals cover at the stated rate."""

from __future__ import annotations

import numpy as np
import pytest

from trainyard.evaluation.bootstrap import bootstrap_weights, metric_intervals, per_class_intervals
from trainyard.metrics import METRICS
from trainyard.evaluation.scored import Scored
from trainyard.evaluation.weighted import WEIGHTED
from trainyard.tasks import Task


def _binary(n=300, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    if ties:
        p = np.round(p, 1)
    proba = np.c_[1 - p, p]
    return Scored(Task.BINARY, y, proba.argmax(axis=1), proba, np.array(["no", "yes"]))


def _multiclass(n=300, k=4, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Scored(Task.MULTICLASS, y, proba.argmax(axis=1), proba, np.array(list("abcd"[:k])))


def _regression(n=300, seed=2):
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    return Scored(Task.REGRESSION, y, y + rng.normal(0, 1, n))


def _sklearn(scored, name, rows):
    y, pred = scored.y[rows], scored.pred[rows]
    proba = None if scored.proba is None else scored.proba[rows]
    classes = None if scored.proba is None else np.arange(scored.proba.shape[1])
    return METRICS[name](y, pred, proba, classes)


@pytest.mark.parametrize("make", [_binary, lambda: _binary(ties=True), _multiclass, _regression])
def test_weighted_metrics_equal_sklearn_on_the_data_and_on_resamples(make):
    scored = make()
    names = [m for m, metric in METRICS.items() if scored.task in metric.tasks]
    W = next(bootstrap_weights(scored.n, 5, seed=3, strata=scored.y if scored.task.is_classification else None))
    for name in names:
        assert WEIGHTED[name](np.ones((1, scored.n)), scored.y, scored.pred, scored.proba)[0] == pytest.approx(
            _sklearn(scored, name, np.arange(scored.n)), rel=1e-9, abs=1e-12), name
        vectorised = WEIGHTED[name](W, scored.y, scored.pred, scored.proba)
        for b in range(len(W)):
            rows = np.repeat(np.arange(scored.n), W[b].astype(int))  # the resample, row by row
            assert vectorised[b] == pytest.approx(_sklearn(scored, name, rows), rel=1e-9, abs=1e-12), (name, b)


def test_stratified_resamples_keep_class_counts_and_are_reproducible():
    y = np.r_[np.zeros(90, int), np.ones(10, int)]
    chunks = list(bootstrap_weights(100, 50, seed=7, strata=y))
    W = np.vstack(chunks)
    assert W.shape == (50, 100)
    assert (W[:, y == 1].sum(axis=1) == 10).all() and (W[:, y == 0].sum(axis=1) == 90).all()
    assert np.array_equal(W, np.vstack(list(bootstrap_weights(100, 50, seed=7, strata=y))))
    assert not np.array_equal(W, np.vstack(list(bootstrap_weights(100, 50, seed=8, strata=y))))


def test_interval_brackets_value_and_baseline_delta():
    scored = _binary(400)
    base = scored.baseline({"kind": "prior", "prior": [0.5, 0.5]})
    rows = {r["metric"]: r for r in metric_intervals(scored, baseline=base, n_boot=300)}
    for r in rows.values():
        assert r["ci_low"] <= r["value"] <= r["ci_high"], r
    assert rows["roc_auc"]["baseline"] == pytest.approx(0.5)
    assert rows["roc_auc"]["beats_baseline"] is True
    assert rows["log_loss"]["greater_is_better"] is False


def test_per_class_rows_match_sklearn():
    from sklearn.metrics import precision_recall_fscore_support

    scored = _multiclass()
    rows = per_class_intervals(scored, n_boot=200)
    p, r, f, s = precision_recall_fscore_support(scored.y, scored.pred, labels=range(4), zero_division=0)
    for c, row in enumerate(rows):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[c], r[c], f[c], s[c]))
        assert row["f1_ci"][0] <= row["f1"] <= row["f1_ci"][1]


def test_accuracy_interval_covers_the_true_value_about_95_percent_of_the_time():
    """Known ground truth: a classifier that is right with probability 0.8 on each of 150 rows."""
    rng = np.random.default_rng(123)
    true_acc, n, reps = 0.8, 150, 200
    hits = 0
    for _ in range(reps):
        y = rng.integers(0, 2, n)
        correct = rng.random(n) < true_acc
        pred = np.where(correct, y, 1 - y)
        proba = np.c_[1 - pred, pred].astype(float)
        scored = Scored(Task.BINARY, y, pred, proba, np.array([0, 1]))
        (row,) = metric_intervals(scored, ["accuracy"], n_boot=400, seed=int(rng.integers(1 << 30)))
        hits += row["ci_low"] <= true_acc <= row["ci_high"]
    coverage = hits / reps
    assert 0.89 <= coverage <= 0.99, coverage


def test_regression_rmse_interval_covers_known_noise_level():
    rng = np.random.default_rng(5)
    hits, reps, sigma = 0, 150, 2.0
    for _ in range(reps):
        y = rng.normal(0, 5, 200)
        scored = Scored(Task.REGRESSION, y, y + rng.normal(0, sigma, 200))
        (row,) = metric_intervals(scored, ["rmse"], n_boot=400, seed=int(rng.integers(1 << 30)))
        hits += row["ci_low"] <= sigma <= row["ci_high"]
    assert 0.87 <= hits / reps <= 0.99


def test_log_loss_with_exact_zero_probabilities_matches_sklearn():
    from sklearn.metrics import log_loss

    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.0, 1.0, 0.0, 0.3, 0.8])  # isotonic calibration can give exact 0 and 1
    proba = np.c_[1 - p, p]
    assert WEIGHTED["log_loss"](np.ones((1, 5)), y, proba.argmax(1), proba)[0] == pytest.approx(log_loss(y, proba), rel=1e-12)
