"""From a run's configuration to what the search needs: its plan, sample weights, resume state."""

from __future__ import annotations

import os
from dataclasses import fields

import numpy as np
import pandas as pd

from trainyard.automl.trials import SearchPlan
from trainyard.config import TrainConfig
from trainyard.errors import ConfigError, DataError, suggest
from trainyard.metrics import Metric

# Metrics that reward getting the rare classes right: train with class-balanced weights unless told otherwise.
BALANCE_METRICS = {"balanced_accuracy", "f1_macro"}
PROBABILITY_METRICS = {"log_loss", "brier"}


def search_plan(cfg: TrainConfig, metric: Metric, time_limit: float | None, n_rows: int, after_search_s: float = 0.0,
                class_weight: str | None = None) -> SearchPlan:
    """The scheduler's plan: bagging when train + validation is small enough, the rest from the config.

    `after_search_s` is the caller's estimate of its work after the search (testing, profiling, saving): it is
    kept out of the search's time. `class_weight` is the audit's choice ("balanced" or None, from
    --class-weight auto|balanced|none): balanced classes become training sample weights. With "auto",
    metrics that reward the rare classes (balanced accuracy, macro F1) also get them, and metrics that score
    probabilities (log loss, Brier) do not: weights would distort the probabilities they judge.
    """
    bag = cfg.bag_folds if cfg.bag_folds >= 2 and n_rows <= cfg.bag_max_rows else 0
    balance = class_weight == "balanced"
    if cfg.class_weight == "auto":
        balance = (balance and metric.name not in PROBABILITY_METRICS) or metric.name in BALANCE_METRICS
    return SearchPlan(cfg, time_limit=time_limit, bag_folds=bag, balance=bool(balance), refit=cfg.refit,
                      reserve_seconds=after_search_s)


def role_overrides(cfg: TrainConfig, df: pd.DataFrame) -> dict[str, str]:
    """The user's column roles; the weight column is never a feature."""
    overrides = cfg.role_overrides()
    if cfg.weight_col:
        if cfg.weight_col not in df.columns:
            raise ConfigError(f"Weight column '{cfg.weight_col}' is not in the data.", suggest(cfg.weight_col, df.columns))
        overrides[cfg.weight_col] = "ignore"
    return overrides


def sample_weights(part: pd.DataFrame, column: str) -> np.ndarray:
    w = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
    if np.isnan(w).any() or (w < 0).any() or not np.isfinite(w).all():
        raise DataError(f"Weight column '{column}' must hold non-negative numbers in every row.",
                        "fill or drop rows with missing or negative weights, or leave out --weight-col.")
    return w


def training_weights(y: np.ndarray, user_weights: np.ndarray | None, n_classes: int | None, balance: bool) -> np.ndarray | None:
    """What a fit is given as sample weights: the user's (--weight-col), times class-balanced weights when the plan
    balances classes (each class's rows weigh in together as much as any other class's)."""
    w = None if user_weights is None else np.asarray(user_weights, dtype=float)
    if balance and n_classes:
        counts = np.bincount(y, minlength=n_classes).astype(float)
        balanced = (len(y) / (n_classes * np.maximum(counts, 1)))[y]
        w = balanced if w is None else w * balanced
    return w


def resume_state(store, ref: str, df_fingerprint: str) -> tuple[dict, TrainConfig, list[dict], float | None]:
    """The interrupted run to continue, its config, its recorded trials and the time it has left."""
    run = store.get_run(ref)  # marks runs whose process died as interrupted
    if run["status"] == "finished":
        raise ConfigError(f"Run {run['id']} already finished (model {run['name']}@{run['model_version']}); there is nothing to resume.",
                          "start a new run without --resume.")
    if run["status"] == "running" and run.get("pid") != os.getpid():
        raise ConfigError(f"Run {run['id']} is still running (process {run['pid']}).", "wait for it, or stop that process first.")
    if run["data_fingerprint"] and run["data_fingerprint"] != df_fingerprint:
        raise DataError(f"This data differs from the data run {run['id']} was trained on.",
                        "resume with the same file, or start a new run without --resume.")
    known = {f.name for f in fields(TrainConfig)}
    saved = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (run["config"] or {}).items() if k in known}
    cfg = TrainConfig(**saved)
    previous = store.trials(run["id"])
    stamps = [r["created_at"] for r in previous if r["created_at"] is not None]
    spent = (max(stamps) - run["created_at"]).total_seconds() if stamps else 0.0
    time_left = None if cfg.trial_budget_only else max(cfg.time_limit - spent, 0.15 * cfg.time_limit)
    return run, cfg, previous, time_left
