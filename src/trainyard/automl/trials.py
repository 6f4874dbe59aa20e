"""What a search trial is, the data it sees, the plan it runs under and the result it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainyard.config import TrainConfig
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
    """What one search runs under: the run's TrainConfig, whose search settings are read from it (not copied), and
    what is decided when the run starts (the time budget, the bagging the data size allows, class balancing, the
    time kept back for the caller's work after the search)."""

    config: TrainConfig
    time_limit: float | None  # seconds for the search and final model; None: only max_trials limits it
    bag_folds: int = 0  # >= 2: k-fold bagging on train + validation, scored out of fold
    balance: bool = False  # class-balanced sample weights in training
    refit: bool = True  # holdout mode: refit the final members on train + validation when time allows (off to calibrate)
    reserve_seconds: float = 0.0  # at least this much is kept (the caller's estimate of its own work after the search)
    reserve_fraction: float = 0.08  # kept for ensembling, refitting and saving
    slowdown: float = 1.0  # measured before the search (CpuShare): estimates of families not fitted yet are scaled by it
    keep_fitted: int = 12  # fitted trial models kept in memory (others are refitted if the ensemble needs them)

    @property
    def max_trials(self) -> int | None:
        return self.config.max_trials

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def tune_top(self) -> int:
        """How many of the best families Optuna tunes."""
        return self.config.tune_top

    @property
    def ensemble_rounds(self) -> int:
        return self.config.ensemble_rounds

    @property
    def max_predict_ms(self) -> float | None:
        """Prefer models predicting faster than this (ms per row)."""
        return self.config.max_predict_ms_per_row

    @property
    def memory_limit_mb(self) -> float | None:
        return self.config.memory_limit_mb

    @property
    def patience(self) -> int:
        """A family stops being tuned after this many tuned trials without improving its best."""
        return self.config.patience


@dataclass
class SearchResult:
    trials: list[Trial]
    estimator: object  # fitted WeightedEnsemble over raw feature columns
    family: str
    params: dict
    val_score: float
    refitted: bool = False
    notes: list[str] = field(default_factory=list)
    fit_rows: int = 0  # the rows the final model was fitted on
    fit_seconds: float = 0.0  # what fitting it on them took (measured when refitted, else its trials' fit times)
    balance: bool = False  # it was fitted with class-balanced weights
