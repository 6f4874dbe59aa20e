"""What a search trial is, the data it sees, the plan it runs under and the result it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainyard.metrics import Metric


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


def best_trial(trials: list[Trial], metric: Metric) -> Trial | None:
    best = None
    for trial in trials:
        if trial.status == "ok" and trial.val_score is not None and (best is None or metric.better(trial.val_score, best.val_score)):
            best = trial
    return best


@dataclass
class SearchPlan:
    time_limit: float | None  # seconds for the search and final model; None: only max_trials limits it
    max_trials: int | None = None
    seed: int = 0
    bag_folds: int = 0  # >= 2: k-fold bagging on train + validation, scored out of fold
    tune_top: int = 3  # how many of the best families Optuna tunes
    ensemble_rounds: int = 25
    refit: bool = True  # holdout mode: refit the final members on train + validation when time allows
    max_predict_ms: float | None = None  # prefer models predicting faster than this (ms per row)
    memory_limit_mb: float | None = None
    balance: bool = False  # class-balanced sample weights in training
    reserve_fraction: float = 0.08  # kept for ensembling, refitting and saving
    reserve_seconds: float = 0.0  # at least this much is kept (the caller's estimate of its own work after the search)
    keep_fitted: int = 12  # fitted trial models kept in memory (others are refitted if the ensemble needs them)
    patience: int = 10  # a family stops being tuned after this many tuned trials without improving its best


@dataclass
class SearchResult:
    trials: list[Trial]
    estimator: object  # fitted WeightedEnsemble over raw feature columns
    family: str
    params: dict
    val_score: float
    refitted: bool = False
    notes: list[str] = field(default_factory=list)
