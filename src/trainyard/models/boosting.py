"""Gradient-boosting families: LightGBM, XGBoost and CatBoost, with early stopping and a time budget.

`Boosted` is one scikit-learn estimator over the three libraries. `fit` holds
out `validation_fraction` of the rows it is given for early stopping (so the
caller's validation and test data stay untouched), and stops adding trees when
`time_budget_s` runs out: the model then has fewer trees, never half a tree.
Each library gets the "tree" preprocessing (pandas categoricals): LightGBM
uses them natively, XGBoost with `enable_categorical`, CatBoost via
`cat_features` on string columns.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from trainyard.errors import ConfigError
from trainyard.models.inputs import check_features, check_target, check_weights
from trainyard.models.registry import Estimate, register
from trainyard.tasks import Task

CAT_MISSING = "__missing__"
CONTROL_PARAMS = {"library", "task", "random_state", "early_stopping_rounds", "validation_fraction", "time_budget_s"}


def n_threads(n_cells: int | None = None) -> int:
    """Threads for a fit: one for small data (thread start-up and spinning cost more than they save,
    badly so on a busy machine), all available cores for large data."""
    if n_cells is not None and n_cells < 2_000_000:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# The hyperparameters each library takes (Boosted's constructor arguments), and CatBoost's own names for three of them.
LIBRARY_PARAMS = {
    "lightgbm": ("n_estimators", "learning_rate", "num_leaves", "max_depth", "min_child_samples", "min_child_weight", "subsample",
                 "subsample_freq", "colsample_bytree", "reg_lambda", "reg_alpha", "cat_smooth"),
    "xgboost": ("n_estimators", "learning_rate", "max_depth", "min_child_weight", "subsample", "colsample_bytree", "reg_lambda",
                "reg_alpha", "max_cat_to_onehot"),
    "catboost": ("n_estimators", "learning_rate", "max_depth", "reg_lambda", "random_strength"),
}
CATBOOST_NAMES = {"n_estimators": "iterations", "max_depth": "depth", "reg_lambda": "l2_leaf_reg"}
OLD_NAMES = {v: k for k, v in CATBOOST_NAMES.items()}  # search spaces and pickles before the hyperparameters were arguments


class Boosted(BaseEstimator):
    """LightGBM / XGBoost / CatBoost with early stopping on an internal split and a time budget.

    The boosting hyperparameters are constructor arguments (None: the library's own default); a library
    refuses, at fit, one that it does not take (`LIBRARY_PARAMS`). `task` "regression" makes it a regressor,
    anything else a classifier. X is an array or the "tree" preprocessing's DataFrame (numbers with NaN,
    pandas categoricals); missing values go to the library, which handles them.
    """

    def __init__(self, library: str = "lightgbm", task: str = "binary", *, n_estimators: int | None = None,
                 learning_rate: float | None = None, num_leaves: int | None = None, max_depth: int | None = None,
                 min_child_samples: int | None = None, min_child_weight: float | None = None, subsample: float | None = None,
                 subsample_freq: int | None = None, colsample_bytree: float | None = None, reg_lambda: float | None = None,
                 reg_alpha: float | None = None, cat_smooth: float | None = None, max_cat_to_onehot: int | None = None,
                 random_strength: float | None = None, random_state: int = 0, early_stopping_rounds: int = 50,
                 validation_fraction: float = 0.1, time_budget_s: float | None = None):
        self.library = library
        self.task = task
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.cat_smooth = cat_smooth
        self.max_cat_to_onehot = max_cat_to_onehot
        self.random_strength = random_strength
        self.random_state = random_state
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.time_budget_s = time_budget_s

    @property
    def _regression(self) -> bool:
        return Task(self.task) is Task.REGRESSION

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # every library routes missing values itself
        if self._regression:
            tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
        else:
            tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
        return tags

    def library_params(self) -> dict:
        """The hyperparameters that are set, under the library's names."""
        if self.library not in LIBRARY_PARAMS:
            raise ConfigError(f"'{self.library}' is not a boosting library.", f"use one of {', '.join(LIBRARY_PARAMS)}.")
        hyper = set(self._get_param_names()) - CONTROL_PARAMS
        given = {name: getattr(self, name) for name in sorted(hyper) if getattr(self, name) is not None}
        foreign = [name for name in given if name not in LIBRARY_PARAMS[self.library]]
        if foreign:
            raise ConfigError(f"{self.library} does not take the setting {', '.join(foreign)}.",
                              f"{self.library} takes {', '.join(LIBRARY_PARAMS[self.library])}.")
        names = CATBOOST_NAMES if self.library == "catboost" else {}
        return {names.get(k, k): v for k, v in given.items()}

    def fit(self, X, y, sample_weight=None):
        X = check_features(self, X, reset=True, allow_nan=True, min_samples=2)
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        y = check_target(self, X, y, regression=self._regression)
        w = check_weights(sample_weight, X)
        params = self.library_params()
        if not self._regression:
            self.classes_, y = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError("only one class in the training rows")
        fit_idx, es_idx = self._early_stopping_split(y)
        deadline = time.monotonic() + self.time_budget_s if self.time_budget_s else None
        parts = (X.iloc[fit_idx], y[fit_idx], None if w is None else w[fit_idx])
        es = None if es_idx is None else (X.iloc[es_idx], y[es_idx], None if w is None else w[es_idx])
        fit = {"lightgbm": self._fit_lightgbm, "xgboost": self._fit_xgboost, "catboost": self._fit_catboost}[self.library]
        self.threads_ = n_threads(X.shape[0] * X.shape[1])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*eval_set.*", category=Warning)  # LightGBM 4.7 renamed it; 4.3 lacks the new one
            self.model_, self.n_iter_ = fit(params, parts, es, deadline)
        self.stopped_by_time_ = bool(deadline and time.monotonic() >= deadline)
        return self

    def _early_stopping_split(self, y):
        n = len(y)
        idx = np.arange(n)
        if not self.early_stopping_rounds or n < 100:
            return idx, None
        from sklearn.model_selection import train_test_split

        stratify = None
        if not self._regression:
            counts = np.bincount(y)
            stratify = y if counts.min() >= 2 else None
        # At least 200 rows (or a quarter of small data) so that early stopping is not steered by noise.
        n_es = max(int(round(n * self.validation_fraction)), min(200, n // 4), 20 if stratify is None else len(counts))
        fit_idx, es_idx = train_test_split(idx, test_size=n_es, random_state=self.random_state, stratify=stratify)
        return np.sort(fit_idx), np.sort(es_idx)

    # each library ---------------------------------------------------------
    def _fit_lightgbm(self, params, parts, es, deadline):
        import lightgbm as lgb

        cls = lgb.LGBMRegressor if self._regression else lgb.LGBMClassifier
        model = cls(**params, random_state=self.random_state, n_jobs=self.threads_, verbose=-1)
        callbacks = []
        kwargs = {}
        if es is not None:
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False))
            kwargs = {"eval_set": [(es[0], es[1])], "eval_sample_weight": None if es[2] is None else [es[2]]}
        if deadline:
            def stop_at_deadline(env):
                if time.monotonic() >= deadline:
                    raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)
            callbacks.append(stop_at_deadline)
        model.fit(parts[0], parts[1], sample_weight=parts[2], callbacks=callbacks, **kwargs)
        return model, int(model.best_iteration_ or model.n_estimators)

    def _fit_xgboost(self, params, parts, es, deadline):
        import xgboost as xgb

        class Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                return time.monotonic() >= deadline

        cls = xgb.XGBRegressor if self._regression else xgb.XGBClassifier
        model = cls(**params, tree_method="hist", enable_categorical=True, random_state=self.random_state,
                    n_jobs=self.threads_, early_stopping_rounds=self.early_stopping_rounds if es is not None else None,
                    callbacks=[Deadline()] if deadline else None)
        kwargs = {}
        if es is not None:
            kwargs = {"eval_set": [(es[0], es[1])], "sample_weight_eval_set": None if es[2] is None else [es[2]]}
        model.fit(parts[0], parts[1], sample_weight=parts[2], verbose=False, **kwargs)
        model.set_params(callbacks=None)  # the deadline is a local class: keep the model picklable
        best = getattr(model, "best_iteration", None)
        return model, int(best + 1 if best is not None else model.get_booster().num_boosted_rounds())

    def _fit_catboost(self, params, parts, es, deadline):
        import catboost

        cls = catboost.CatBoostRegressor if self._regression else catboost.CatBoostClassifier
        X_fit = catboost_frame(parts[0])
        cat_features = [i for i, c in enumerate(parts[0].columns) if isinstance(parts[0][c].dtype, pd.CategoricalDtype)]
        model = cls(**params, random_seed=self.random_state, thread_count=self.threads_, verbose=False,
                    allow_writing_files=False)
        kwargs = {}
        if es is not None:
            kwargs = {"eval_set": catboost.Pool(catboost_frame(es[0]), es[1], cat_features=cat_features, weight=es[2]),
                      "early_stopping_rounds": self.early_stopping_rounds, "use_best_model": True}
        if deadline:
            kwargs["callbacks"] = [_CatboostDeadline(deadline)]
        model.fit(catboost.Pool(X_fit, parts[1], cat_features=cat_features, weight=parts[2]), **kwargs)
        return model, int(model.tree_count_)

    # prediction -------------------------------------------------------------
    def _input(self, X):
        check_is_fitted(self)
        X = check_features(self, X, reset=False, allow_nan=True)
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        return catboost_frame(X) if self.library == "catboost" else X

    def predict(self, X):
        if not self._regression:
            codes = np.argmax(self.predict_proba(X), axis=1)
            return self.classes_[codes]
        X = self._input(X)
        return np.asarray(self.model_.predict(X), dtype=float)

    @available_if(lambda self: not self._regression)
    def predict_proba(self, X):
        X = self._input(X)
        return np.asarray(self.model_.predict_proba(X), dtype=float)

    def score(self, X, y, sample_weight=None) -> float:
        """R² for a regressor, accuracy for a classifier (scikit-learn's convention)."""
        metric = r2_score if self._regression else accuracy_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))

    def __setstate__(self, state):
        if "params" in state:  # pickled before the hyperparameters were constructor arguments: they were a `params` dict
            old = state.pop("params") or {}
            state = {**dict.fromkeys(self._get_param_names()), **state, **{OLD_NAMES.get(k, k): v for k, v in old.items()}}
            if "model_" in state:
                state.update(_input_attributes(state["model_"]))
        super().__setstate__(state)


def _input_attributes(model) -> dict:
    """n_features_in_ (and feature_names_in_ when it was fitted on named columns) of a fitted library model."""
    names = getattr(model, "feature_names_in_", None)
    if names is None and getattr(model, "feature_names_", None) is not None:  # CatBoost
        names = model.feature_names_
        names = None if list(names) == [str(i) for i in range(len(names))] else names
    out = {"n_features_in_": int(model.n_features_in_)}
    if names is not None:
        out["feature_names_in_"] = np.asarray(names, dtype=object)
    return out


class _CatboostDeadline:
    def __init__(self, deadline: float):
        self.deadline = deadline

    def after_iteration(self, info) -> bool:  # True: go on
        return time.monotonic() < self.deadline


def catboost_frame(X: pd.DataFrame) -> pd.DataFrame:
    """CatBoost wants categorical columns as strings without missing values."""
    out = X.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(object).where(out[name].notna(), CAT_MISSING).astype(str)
    return out


def _round_seconds(scale: float, n_rows: int, n_features: int, n_classes: int) -> float:
    """Prior seconds of one boosting round on one core (a tree per class for more than two classes)."""
    return scale * (5e-4 + 2e-9 * n_rows * n_features) * (max(1, n_classes) if n_classes > 2 else 1)


def _boost_estimate(scale: float, mem_factor: float, base_mb: float):
    def estimate(n_rows, n_features, n_classes, params) -> Estimate:
        rounds = min(params.get("n_estimators", params.get("iterations", 1000)), 600)
        per_round = _round_seconds(scale, n_rows, n_features, n_classes)
        return Estimate(seconds=0.2 + rounds * per_round, memory_mb=base_mb + mem_factor * n_rows * n_features * 8 / 1e6)

    return estimate


LIGHTGBM_SCALE = 1.0
ROUNDS_AT_DEFAULT_RATE = 200  # rounds the default learning rate (0.1) is given before early stopping usually ends a fit


def _lightgbm_sized(n_rows: int, n_features: int, n_classes: int, seconds: float | None) -> dict:
    """The first candidate of every search, sized for the data and the time: leaves need about 1% of the rows (at
    least 5, LightGBM's 20 from 2,000 rows up), and when the fit's time allows fewer than ROUNDS_AT_DEFAULT_RATE
    rounds by the prior (many classes cost a tree each per round), the learning rate rises in proportion, up to
    0.3, so that the trees it has time for still reach a fitted model instead of stopping a third of the way."""
    sized = {"min_child_samples": int(min(20, max(5, n_rows // 100)))}
    if seconds is not None:
        rounds = max(seconds - 0.2, 0.0) / _round_seconds(LIGHTGBM_SCALE, n_rows, n_features, n_classes)
        if rounds < ROUNDS_AT_DEFAULT_RATE:
            sized["learning_rate"] = round(min(0.3, 0.1 * ROUNDS_AT_DEFAULT_RATE / max(rounds, 1.0)), 4)
    return sized


def _rows_columns_penalties(trial) -> dict:
    """The part of the LightGBM and XGBoost spaces they share (same parameter names in both)."""
    return {"subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True)}


def _lightgbm_space(trial, task: Task) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 3, 100, log=True),
            "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
            **_rows_columns_penalties(trial)}


@register("lightgbm", prep="tree", requires=("lightgbm",), space=_lightgbm_space, estimate=_boost_estimate(LIGHTGBM_SCALE, 3, 100),
          sized=_lightgbm_sized,
          defaults={"n_estimators": 2000, "learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20,
                    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0},
          description="LightGBM gradient-boosted trees, native categoricals, early stopping")
def make_lightgbm(task: Task, seed: int, **params):
    return Boosted("lightgbm", task.value, random_state=seed, **params)


def _xgboost_space(trial, task: Task) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
            **_rows_columns_penalties(trial)}


@register("xgboost", prep="tree", requires=("xgboost",), space=_xgboost_space, estimate=_boost_estimate(1.5, 3, 150),
          defaults={"n_estimators": 2000, "learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0,
                    "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0, "max_cat_to_onehot": 8},
          description="XGBoost histogram trees with categorical support, early stopping")
def make_xgboost(task: Task, seed: int, **params):
    return Boosted("xgboost", task.value, random_state=seed, **params)


def _catboost_space(trial, task: Task) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 4, 10),
            "reg_lambda": trial.suggest_float("reg_lambda", 1.0, 10.0, log=True),
            "random_strength": trial.suggest_float("random_strength", 0.1, 5.0, log=True)}


@register("catboost", prep="tree", requires=("catboost",), space=_catboost_space, estimate=_boost_estimate(4.0, 4, 200),
          defaults={"n_estimators": 2000, "learning_rate": 0.08, "max_depth": 6, "reg_lambda": 3.0},
          description="CatBoost ordered boosting with native categoricals, early stopping")
def make_catboost(task: Task, seed: int, **params):
    # trials recorded before the settings were Boosted's arguments use CatBoost's names (iterations, depth, l2_leaf_reg)
    return Boosted("catboost", task.value, random_state=seed, **{OLD_NAMES.get(k, k): v for k, v in params.items()})
