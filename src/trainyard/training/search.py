"""What a search trial is, the data it sees, and how its predictions are scored.

`search` is the entry point the facade calls; the scheduling itself (defaults
first, Optuna on the best families, ensemble selection, resume) lives in
`train/scheduler.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainyard.evaluation.metrics import Metric
from trainyard.tasks import Task


@dataclass
class Trial:
    number: int
    family: str
    params: dict
    status: str  # ok, failed, skipped
    val_score: float | None = None
    fit_seconds: float | None = None
    predict_ms_per_row: float | None = None
    memory_mb: float | None = None
    message: str = ""
    extra: dict = field(default_factory=dict)  # origin (default/tuned/ensemble), seed, optuna params, ...
    pipeline: object = field(default=None, repr=False)

    def record(self) -> dict:
        """The columns stored in the workspace's trials table."""
        return {k: v for k, v in self.__dict__.items() if k not in ("pipeline", "number", "family")}


@dataclass
class SearchData:
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    classes: np.ndarray | None
    w_train: np.ndarray | None = None  # user sample weights (a weight column), if any
    w_val: np.ndarray | None = None


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


def best_trial(trials: list[Trial], metric: Metric) -> Trial | None:
    best = None
    for trial in trials:
        if trial.status == "ok" and trial.val_score is not None and (best is None or metric.better(trial.val_score, best.val_score)):
            best = trial
    return best


def search(data: SearchData, **kwargs):
    """Run the AutoML scheduler (see `trainyard.training.scheduler.Scheduler`); returns a `SearchResult`."""
    from trainyard.training.scheduler import Scheduler

    return Scheduler(data, **kwargs).run()
