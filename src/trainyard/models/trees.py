"""Tree families from scikit-learn: decision tree, random forest, extra trees.

They get the "tree" preprocessing (pandas categoricals); `CodedTrees` feeds them
the category codes as numbers. Forests grow in chunks of trees so a time budget
stops them cleanly: a forest with fewer trees is still a whole, valid model.

A forest's memory is bounded: unpruned trees grow about two nodes per training row each, so 300 of them on
40,000 rows of a regression took 1.4 GB (and 14 s to save). Unless a forest is given `max_leaf_nodes`,
`CodedTrees(memory_mb=...)` caps each tree's leaves so that its trees fit in that many MB (FOREST_MEMORY_MB by
default: every node is scikit-learn's 64-byte struct plus a value row of 8 bytes per class). Tables small enough
never meet the cap; the idea is AutoGluon's (its forests cap leaves at a fixed count).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from trainyard.errors import ConfigError
from trainyard.models.boosting import n_threads
from trainyard.models.inputs import check_features
from trainyard.models.registry import Estimate, register
from trainyard.tasks import Task


class CodedTrees(BaseEstimator):
    """A scikit-learn tree or forest fed categorical codes as numbers, grown within `time_budget_s` if given.

    X is an array or the "tree" preprocessing's DataFrame (numbers with NaN, pandas categoricals); whether
    missing values are allowed, and whether it is a classifier or a regressor, are the inner estimator's.
    """

    def __init__(self, estimator=None, time_budget_s: float | None = None, chunk: int = 25, memory_mb: float | None = None):
        self.estimator = estimator
        self.time_budget_s = time_budget_s
        self.chunk = chunk
        self.memory_mb = memory_mb

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = get_tags(self.estimator)
            tags.estimator_type = inner.estimator_type
            tags.classifier_tags, tags.regressor_tags = inner.classifier_tags, inner.regressor_tags
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
            tags.target_tags.multi_output = inner.target_tags.multi_output
        return tags

    def _numeric(self, X, reset: bool):
        X = check_features(self, X, reset=reset, allow_nan=get_tags(self).input_tags.allow_nan)
        if not isinstance(X, pd.DataFrame):
            return np.asarray(X, dtype=np.float32)
        X = X.copy()
        for name in X.columns:
            if isinstance(X[name].dtype, pd.CategoricalDtype):
                X[name] = X[name].cat.codes.astype(np.float32).where(X[name].notna())
        return X.to_numpy(dtype=np.float32)

    def fit(self, X, y, sample_weight=None):
        if self.estimator is None:
            raise ConfigError("CodedTrees needs a scikit-learn tree or forest to wrap.",
                              "pass estimator=DecisionTreeClassifier() or a forest.")
        Xn = self._numeric(X, reset=True)
        model = clone(self.estimator)
        if "n_jobs" in model.get_params():
            model.set_params(n_jobs=n_threads(Xn.shape[0] * Xn.shape[1] * 20))
        total = getattr(model, "n_estimators", None)
        if self.memory_mb and "max_leaf_nodes" in model.get_params() and model.max_leaf_nodes is None:
            classes = len(np.unique(np.asarray(y))) if get_tags(model).estimator_type == "classifier" else 1
            model.set_params(max_leaf_nodes=leaf_cap(total or 1, classes, self.memory_mb))
        self.max_leaf_nodes_ = model.get_params().get("max_leaf_nodes")
        if total is None or not self.time_budget_s:
            self.estimator_ = model.fit(Xn, y, sample_weight=sample_weight)
        else:
            self.estimator_ = self._grow(model, total, Xn, y, sample_weight)
        self.n_estimators_ = getattr(self.estimator_, "n_estimators", 1)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def _grow(self, model, total: int, Xn, y, sample_weight):
        """A forest grown `chunk` trees at a time until `total` or until the next chunk would pass the budget."""
        deadline = time.monotonic() + self.time_budget_s
        grown, started = 0, time.monotonic()
        model.set_params(warm_start=True)
        while grown < total:
            grown = min(total, grown + self.chunk)
            model.set_params(n_estimators=grown).fit(Xn, y, sample_weight=sample_weight)
            per_tree = (time.monotonic() - started) / grown
            if time.monotonic() + per_tree * self.chunk > deadline:
                break
        return model.set_params(warm_start=False)

    def predict(self, X):
        check_is_fitted(self)
        return self.estimator_.predict(self._numeric(X, reset=False))

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        check_is_fitted(self)
        return self.estimator_.predict_proba(self._numeric(X, reset=False))

    def score(self, X, y, sample_weight=None) -> float:
        """The inner estimator's score (accuracy or R²)."""
        check_is_fitted(self)
        return float(self.estimator_.score(self._numeric(X, reset=False), y, sample_weight=sample_weight))


NumericForest = CodedTrees  # the spine's name for it


FOREST_MEMORY_MB = 400.0  # what one forest's trees may take (in memory and pickled): their leaves are capped to fit
MIN_LEAVES = 1_000  # the cap never goes below this many leaves per tree


def node_bytes(n_classes: int) -> int:
    """One node of a fitted scikit-learn tree: its struct (64 bytes) and its value row (8 bytes per class, or one)."""
    return 64 + 8 * max(1, n_classes)


def leaf_cap(trees: int, n_classes: int, memory_mb: float) -> int:
    """Leaves per tree so that `trees` trees of about two nodes per leaf fit in `memory_mb`."""
    return max(MIN_LEAVES, int(memory_mb * 1e6 / (max(1, trees) * 2 * node_bytes(n_classes))))


def _tree_nodes(n_rows: int, min_samples_leaf: int) -> float:
    return 2 * n_rows / max(1, min_samples_leaf)


def _tree_estimate(n_rows, n_features, n_classes, params) -> Estimate:
    nodes = _tree_nodes(n_rows, params.get("min_samples_leaf", 1))
    return Estimate(seconds=0.02 + 3e-8 * n_rows * n_features * math.log2(n_rows + 2),
                    memory_mb=50 + 2 * n_rows * n_features * 4 / 1e6 + nodes * (64 + 8 * max(1, n_classes)) / 1e6)


def _forest_estimate(n_rows, n_features, n_classes, params) -> Estimate:
    trees = params.get("n_estimators", 300)
    leaves = params.get("max_leaf_nodes") or leaf_cap(trees, n_classes, FOREST_MEMORY_MB)
    nodes = min(_tree_nodes(0.63 * n_rows, params.get("min_samples_leaf", 1)), 2 * leaves)
    max_features = params.get("max_features", "sqrt")
    share = {"sqrt": math.sqrt(n_features) / max(1, n_features), "log2": math.log2(n_features + 1) / max(1, n_features)}.get(max_features, max_features)
    share = float(share) if share is not None else 1.0
    per_tree = 3e-8 * n_rows * max(1.0, share * n_features) * math.log2(n_rows + 2)
    return Estimate(seconds=0.1 + trees * per_tree,
                    memory_mb=80 + 2 * n_rows * n_features * 4 / 1e6 + trees * nodes * node_bytes(n_classes) / 1e6)


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
    return CodedTrees(getattr(ensemble, name)(random_state=seed, n_jobs=-1, **params), memory_mb=FOREST_MEMORY_MB)


@register("random_forest", prep="tree", defaults={"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt", "bootstrap": True},
          space=_forest_space, estimate=_forest_estimate, description="scikit-learn random forest")
def make_random_forest(task: Task, seed: int, **params):
    return _forest(task, seed, "random_forest", params)


@register("extra_trees", prep="tree", defaults={"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt", "bootstrap": False},
          space=_forest_space, estimate=_forest_estimate, description="scikit-learn extremely randomised trees")
def make_extra_trees(task: Task, seed: int, **params):
    return _forest(task, seed, "extra_trees", params)
