"""Fit candidate pipelines within the time budget and score them on validation data.

This is the seam for the full AutoML scheduler: `search` gets the split data,
the families to try and a budget, records every trial in the store as it
finishes, and returns the trials with their fitted pipelines.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema
from trainyard.evaluation.metrics import Metric
from trainyard.models.registry import Family
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
    message: str = ""
    pipeline: object = field(default=None, repr=False)

    def record(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("pipeline", "number", "family")}


@dataclass
class SearchData:
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    classes: np.ndarray | None


def score_pipeline(pipeline, X, y, task: Task, metric: Metric, classes) -> float:
    if task.is_classification:
        proba = np.asarray(pipeline.predict_proba(X))
        pred = proba.argmax(axis=1)
        return metric(y, pred, proba, np.arange(len(classes)))
    return metric(y, np.asarray(pipeline.predict(X)))


def search(
    data: SearchData,
    *,
    schema: Schema,
    task: Task,
    metric: Metric,
    families: list[Family],
    time_limit: float,
    seed: int = 0,
    max_trials: int | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    extra_params: dict | None = None,
) -> list[Trial]:
    """One trial per family with its defaults, in order, until the budget or trial count runs out.

    `extra_params` (e.g. {"class_weight": "balanced"}) go to every family whose builder accepts them.
    """
    started = time.perf_counter()
    trials: list[Trial] = []
    for number, family in enumerate(families):
        if max_trials is not None and number >= max_trials:
            break
        elapsed = time.perf_counter() - started
        if trials and elapsed > 0.8 * time_limit:
            trial = Trial(number, family.name, dict(family.defaults), "skipped", message=f"time budget used ({elapsed:.0f}s of {time_limit:.0f}s)")
        else:
            trial = fit_trial(number, family, data, schema=schema, task=task, metric=metric, seed=seed,
                              params=accepted_params(family, extra_params))
        trials.append(trial)
        if on_trial:
            on_trial(trial)
    return trials


def fit_trial(number: int, family: Family, data: SearchData, *, schema: Schema, task: Task, metric: Metric, seed: int, params: dict | None = None) -> Trial:
    params = {**family.defaults, **(params or {})}
    pipeline = family.build(schema, task, params, seed)
    t0 = time.perf_counter()
    try:
        pipeline.fit(data.X_train, data.y_train)
        fit_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        score = score_pipeline(pipeline, data.X_val, data.y_val, task, metric, data.classes)
        predict_ms = (time.perf_counter() - t1) * 1000 / max(len(data.X_val), 1)
    except Exception as exc:  # a family failing must not end the run; it is recorded
        return Trial(number, family.name, params, "failed", fit_seconds=time.perf_counter() - t0,
                     message=f"{type(exc).__name__}: {exc}"[:500] + "\n" + traceback.format_exc(limit=3)[-1500:])
    if not np.isfinite(score):
        return Trial(number, family.name, params, "failed", fit_seconds=fit_seconds, message=f"validation {metric.name} is {score}")
    return Trial(number, family.name, params, "ok", score, fit_seconds, predict_ms, pipeline=pipeline)


def accepted_params(family: Family, params: dict | None) -> dict | None:
    """The subset of `params` that the family's builder takes (by name, or through **kwargs)."""
    if not params:
        return None
    import inspect

    sig = inspect.signature(family.make).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in sig} or None


def best_trial(trials: list[Trial], metric: Metric) -> Trial | None:
    best = None
    for trial in trials:
        if trial.status == "ok" and (best is None or metric.better(trial.val_score, best.val_score)):
            best = trial
    return best
