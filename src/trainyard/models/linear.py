"""Linear families: logistic regression / ridge, and elastic net. They eat scaled, one-hot features."""

from __future__ import annotations

from trainyard.models.registry import Estimate, register
from trainyard.tasks import Task


def _linear_estimate(n_rows: int, n_features: int, n_classes: int, params: dict) -> Estimate:
    width = 3 * n_features  # one-hot widens categorical columns
    return Estimate(seconds=0.05 + 3e-7 * n_rows * width * max(1, n_classes - 1),
                    memory_mb=50 + 4 * n_rows * width * 8 / 1e6)


def _linear_space(trial, task: Task) -> dict:
    if task is Task.REGRESSION:
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}


@register("linear", prep="linear", defaults={"C": 1.0, "alpha": 1.0}, space=_linear_space, estimate=_linear_estimate,
          description="logistic regression (classification) or ridge (regression) on scaled, one-hot features")
def make_linear(task: Task, seed: int, C: float = 1.0, alpha: float = 1.0):
    from sklearn.linear_model import LogisticRegression, Ridge

    if task is Task.REGRESSION:
        return Ridge(alpha=alpha)
    return LogisticRegression(C=C, max_iter=2000, random_state=seed)


def _elastic_space(trial, task: Task) -> dict:
    params = {"l1_ratio": trial.suggest_float("l1_ratio", 0.05, 0.95)}
    if task is Task.REGRESSION:
        params["alpha"] = trial.suggest_float("alpha", 1e-4, 10.0, log=True)
    else:
        params["C"] = trial.suggest_float("C", 1e-3, 1e2, log=True)
    return params


def _elastic_estimate(n_rows: int, n_features: int, n_classes: int, params: dict) -> Estimate:
    base = _linear_estimate(n_rows, n_features, n_classes, params)
    return Estimate(seconds=base.seconds * 6, memory_mb=base.memory_mb)  # saga / coordinate descent: slower


@register("elastic_net", prep="linear", defaults={"C": 1.0, "alpha": 0.01, "l1_ratio": 0.5},
          space=_elastic_space, estimate=_elastic_estimate,
          description="elastic-net regularised logistic regression (saga) or ElasticNet regression")
def make_elastic_net(task: Task, seed: int, C: float = 1.0, alpha: float = 0.01, l1_ratio: float = 0.5):
    from sklearn.linear_model import ElasticNet, LogisticRegression

    if task is Task.REGRESSION:
        return ElasticNet(alpha=alpha, l1_ratio=l1_ratio, max_iter=5000, random_state=seed)
    return LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", max_iter=500, tol=1e-3, random_state=seed)
