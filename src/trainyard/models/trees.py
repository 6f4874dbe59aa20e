"""Tree families from scikit-learn: decision tree, random forest, extra trees.

They get the "tree" preprocessing (pandas categoricals); `CodedTrees` feeds them
the category codes as numbers. Forests grow in chunks of trees so a time budget
stops them cleanly: a forest with fewer trees is still a whole, valid model.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from trainyard.models.boosting import n_threads
from trainyard.models.registry import Estimate, register
from trainyard.tasks import Task


class CodedTrees(BaseEstimator):
    """A scikit-learn tree or forest fed categorical codes as numbers, grown within `time_budget_s` if given."""

    def __init__(self, estimator=None, time_budget_s: float | None = None, chunk: int = 25):
        self.estimator = estimator
        self.time_budget_s = time_budget_s
        self.chunk = chunk

    @staticmethod
    def _numeric(X):
        if not isinstance(X, pd.DataFrame):
            return np.asarray(X, dtype=np.float32)
        X = X.copy()
        for name in X.columns:
            if isinstance(X[name].dtype, pd.CategoricalDtype):
                X[name] = X[name].cat.codes.astype(np.float32).where(X[name].notna())
        return X.to_numpy(dtype=np.float32)

    def fit(self, X, y, sample_weight=None):
        Xn = self._numeric(X)
        model = clone(self.estimator)
        if "n_jobs" in model.get_params():
            model.set_params(n_jobs=n_threads(Xn.shape[0] * Xn.shape[1] * 20))
        total = getattr(model, "n_estimators", None)
        if total is None or not self.time_budget_s:
            self.estimator_ = model.fit(Xn, y, sample_weight=sample_weight)
        else:
            deadline = time.monotonic() + self.time_budget_s
            grown, started = 0, time.monotonic()
            model.set_params(warm_start=True)
            while grown < total:
                grown = min(total, grown + self.chunk)
                model.set_params(n_estimators=grown).fit(Xn, y, sample_weight=sample_weight)
                per_tree = (time.monotonic() - started) / grown
                if time.monotonic() + per_tree * self.chunk > deadline:
                    break
            model.set_params(warm_start=False)
            self.estimator_ = model
        self.n_estimators_ = getattr(self.estimator_, "n_estimators", 1)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X):
        return self.estimator_.predict(self._numeric(X))

    def predict_proba(self, X):
        return self.estimator_.predict_proba(self._numeric(X))


NumericForest = CodedTrees  # the spine's name for it


def _tree_nodes(n_rows: int, min_samples_leaf: int) -> float:
    return 2 * n_rows / max(1, min_samples_leaf)


def _tree_estimate(n_rows, n_features, n_classes, params) -> Estimate:
    nodes = _tree_nodes(n_rows, params.get("min_samples_leaf", 1))
    return Estimate(seconds=0.02 + 3e-8 * n_rows * n_features * math.log2(n_rows + 2),
                    memory_mb=50 + 2 * n_rows * n_features * 4 / 1e6 + nodes * (64 + 8 * max(1, n_classes)) / 1e6)


def _forest_estimate(n_rows, n_features, n_classes, params) -> Estimate:
    trees = params.get("n_estimators", 300)
    nodes = _tree_nodes(0.63 * n_rows, params.get("min_samples_leaf", 1))
    max_features = params.get("max_features", "sqrt")
    share = {"sqrt": math.sqrt(n_features) / max(1, n_features), "log2": math.log2(n_features + 1) / max(1, n_features)}.get(max_features, max_features)
    share = float(share) if share is not None else 1.0
    per_tree = 3e-8 * n_rows * max(1.0, share * n_features) * math.log2(n_rows + 2)
    return Estimate(seconds=0.1 + trees * per_tree,
                    memory_mb=80 + 2 * n_rows * n_features * 4 / 1e6 + trees * nodes * (64 + 8 * max(1, n_classes)) / 1e6)


def _tree_space(trial, task: Task) -> dict:
    return {"max_depth": trial.suggest_int("max_depth", 2, 24),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 64, log=True),
            "max_features": trial.suggest_categorical("max_features", [None, "sqrt", 0.5])}


@register("decision_tree", prep="tree", defaults={"max_depth": 10, "min_samples_leaf": 5, "max_features": None},
          space=_tree_space, estimate=_tree_estimate, description="a single CART decision tree")
def make_decision_tree(task: Task, seed: int, **params):
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeRegressor if task is Task.REGRESSION else DecisionTreeClassifier
    return CodedTrees(cls(random_state=seed, **params))


def _forest_space(trial, task: Task) -> dict:
    return {"n_estimators": trial.suggest_int("n_estimators", 100, 500, step=50),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.3, 0.5, 0.8, None]),
            "bootstrap": trial.suggest_categorical("bootstrap", [True, False])}


def _forest(task: Task, seed: int, kind: str, params: dict):
    from sklearn import ensemble

    name = ("RandomForest" if kind == "random_forest" else "ExtraTrees") + ("Regressor" if task is Task.REGRESSION else "Classifier")
    params = dict(params)
    if task is Task.REGRESSION and params.get("max_features") == "sqrt":
        params["max_features"] = 0.5  # regression forests need more candidate features per split
    return CodedTrees(getattr(ensemble, name)(random_state=seed, n_jobs=-1, **params))


@register("random_forest", prep="tree", defaults={"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt", "bootstrap": True},
          space=_forest_space, estimate=_forest_estimate, description="scikit-learn random forest")
def make_random_forest(task: Task, seed: int, **params):
    return _forest(task, seed, "random_forest", params)


@register("extra_trees", prep="tree", defaults={"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt", "bootstrap": False},
          space=_forest_space, estimate=_forest_estimate, description="scikit-learn extremely randomised trees")
def make_extra_trees(task: Task, seed: int, **params):
    return _forest(task, seed, "extra_trees", params)
