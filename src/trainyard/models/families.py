"""Built-in model families. Heavy libraries are imported inside each builder."""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator, clone

from trainyard.models.registry import register
from trainyard.tasks import Task


@register("linear", prep="linear", defaults={"C": 1.0, "alpha": 1.0},
          description="logistic regression (classification) or ridge (regression) on scaled, one-hot features")
def make_linear(task: Task, seed: int, C: float = 1.0, alpha: float = 1.0, class_weight: str | None = None):
    from sklearn.linear_model import LogisticRegression, Ridge

    if task is Task.REGRESSION:
        return Ridge(alpha=alpha)
    return LogisticRegression(C=C, max_iter=2000, random_state=seed, class_weight=class_weight)


@register("random_forest", prep="tree", defaults={"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt"},
          description="scikit-learn random forest")
def make_random_forest(task: Task, seed: int, **params):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if task is Task.REGRESSION else RandomForestClassifier
    if task is Task.REGRESSION:
        params.pop("class_weight", None)
    if task is Task.REGRESSION and params.get("max_features") == "sqrt":
        params["max_features"] = 0.5
    return NumericForest(cls(random_state=seed, n_jobs=-1, **params))


@register("lightgbm", prep="tree", requires=("lightgbm",),
          defaults={"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
                    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0},
          description="LightGBM gradient-boosted trees with native categoricals")
def make_lightgbm(task: Task, seed: int, **params):
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if task is Task.REGRESSION else lgb.LGBMClassifier
    if task is Task.REGRESSION:
        params.pop("class_weight", None)
    return cls(random_state=seed, verbose=-1, n_jobs=-1, **params)


class NumericForest(BaseEstimator):
    """A scikit-learn forest fed categorical codes as numbers (its trees split on them well enough)."""

    def __init__(self, forest=None):
        self.forest = forest

    @staticmethod
    def _numeric(X):
        X = pd.DataFrame(X).copy()
        for name in X.columns:
            if isinstance(X[name].dtype, pd.CategoricalDtype):
                X[name] = X[name].cat.codes.astype(float).where(X[name].notna())
        return X.to_numpy(dtype=float)

    def fit(self, X, y, sample_weight=None):
        self.forest_ = clone(self.forest).fit(self._numeric(X), y, sample_weight=sample_weight)
        if hasattr(self.forest_, "classes_"):
            self.classes_ = self.forest_.classes_
        return self

    def predict(self, X):
        return self.forest_.predict(self._numeric(X))

    def predict_proba(self, X):
        return self.forest_.predict_proba(self._numeric(X))
