"""Metrics by name: how to compute them and which direction is better.

A metric takes (y_true, y_pred, proba) where `proba` is the class-probability
matrix (columns in `classes` order) for classification and None for regression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from trainyard.errors import ConfigError, suggest
from trainyard.tasks import Task


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable
    greater_is_better: bool
    tasks: frozenset
    needs_proba: bool = False

    def __call__(self, y_true, y_pred, proba=None, classes=None) -> float:
        if self.needs_proba:
            return float(self.fn(y_true, proba, classes))
        return float(self.fn(y_true, y_pred))

    def better(self, a: float, b: float) -> bool:
        """Is score a better than score b?"""
        return a > b if self.greater_is_better else a < b


def _positive_proba(y_true, proba, classes):
    return proba[:, 1], (np.asarray(y_true) == classes[1]).astype(int)


def _roc_auc(y_true, proba, classes):
    if len(classes) == 2:
        p, y = _positive_proba(y_true, proba, classes)
        return skm.roc_auc_score(y, p)
    return skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(classes))


def _pr_auc(y_true, proba, classes):
    p, y = _positive_proba(y_true, proba, classes)
    return skm.average_precision_score(y, p)


def _log_loss(y_true, proba, classes):
    return skm.log_loss(y_true, proba, labels=list(classes))  # it clips to [eps, 1 - eps] itself


def _brier(y_true, proba, classes):
    p, y = _positive_proba(y_true, proba, classes)
    return skm.brier_score_loss(y, p)


def _binary(fn):
    return lambda y_true, y_pred: fn(y_true, y_pred, average="binary", pos_label=_pos_label(y_true, y_pred), zero_division=0)


def _pos_label(y_true, y_pred):
    labels = sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()), key=str)
    return labels[-1]


C, B, R = frozenset({Task.BINARY, Task.MULTICLASS}), frozenset({Task.BINARY}), frozenset({Task.REGRESSION})
METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", skm.accuracy_score, True, C),
        Metric("balanced_accuracy", skm.balanced_accuracy_score, True, C),
        Metric("f1", _binary(skm.f1_score), True, B),
        Metric("precision", _binary(skm.precision_score), True, B),
        Metric("recall", _binary(skm.recall_score), True, B),
        Metric("f1_macro", lambda y, p: skm.f1_score(y, p, average="macro", zero_division=0), True, C),
        Metric("roc_auc", _roc_auc, True, C, needs_proba=True),
        Metric("pr_auc", _pr_auc, True, B, needs_proba=True),
        Metric("log_loss", _log_loss, False, C, needs_proba=True),
        Metric("brier", _brier, False, B, needs_proba=True),
        Metric("rmse", lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))), False, R),
        Metric("mae", skm.mean_absolute_error, False, R),
        Metric("mape", skm.mean_absolute_percentage_error, False, R),
        Metric("r2", skm.r2_score, True, R),
    ]
}
REPORTED = {
    Task.BINARY: ["roc_auc", "accuracy", "balanced_accuracy", "f1", "precision", "recall", "pr_auc", "log_loss", "brier"],
    Task.MULTICLASS: ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc"],
    Task.REGRESSION: ["rmse", "mae", "r2", "mape"],
}


def get_metric(name: str, task: Task) -> Metric:
    if name not in METRICS:
        raise ConfigError(f"'{name}' is not a metric.", suggest(name, METRICS))
    metric = METRICS[name]
    if task not in metric.tasks:
        valid = [m for m, v in METRICS.items() if task in v.tasks]
        raise ConfigError(f"Metric '{name}' does not apply to {task.value} tasks.", "use one of " + ", ".join(valid) + ".")
    return metric


def score_all(task: Task, y_true, y_pred, proba=None, classes=None, names: list[str] | None = None) -> dict[str, float]:
    """Every reported metric for the task; a metric that cannot be computed on this data is left out."""
    out = {}
    for name in names or REPORTED[task]:
        try:
            value = METRICS[name](y_true, y_pred, proba, classes)
        except ValueError:
            continue
        if np.isfinite(value):
            out[name] = value
    return out


def score_predictions(metric: Metric, task: Task, y, preds: np.ndarray, n_classes: int | None, sample_weight=None) -> float:
    """The metric of class-probability (or regression) predictions; weighted when weights are given."""
    if task.is_classification:
        labels = preds.argmax(axis=1)
        args = (y, preds, np.arange(n_classes)) if metric.needs_proba else (y, labels)
    else:
        args = (y, preds)
    if sample_weight is not None:
        try:
            return float(metric.fn(*args, sample_weight=sample_weight))
        except TypeError:  # a metric without weights
            pass
    if task.is_classification:
        return metric(y, labels, preds, np.arange(n_classes))
    return metric(y, preds)


def score_pipeline(pipeline, X, y, task: Task, metric: Metric, classes, sample_weight=None) -> float:
    """The metric of a fitted pipeline on (X, y); y holds class codes for classification."""
    if task.is_classification:
        return score_predictions(metric, task, y, np.asarray(pipeline.predict_proba(X)), len(classes), sample_weight)
    return score_predictions(metric, task, y, np.asarray(pipeline.predict(X), dtype=float), None, sample_weight)
