"""k-nearest neighbours on scaled, one-hot features. Cheap to fit, costly to predict on large tables."""

from __future__ import annotations

from trainyard.models.registry import Estimate, register
from trainyard.tasks import Task


def _knn_estimate(n_rows: int, n_features: int, n_classes: int, params: dict) -> Estimate:
    width = 3 * n_features
    # Scoring the validation rows (about a third of the training rows) against every training row dominates.
    return Estimate(seconds=0.05 + 1e-9 * n_rows * (n_rows / 3) * width, memory_mb=100 + 3 * n_rows * width * 8 / 1e6)


def _knn_space(trial, task: Task) -> dict:
    return {"n_neighbors": trial.suggest_int("n_neighbors", 3, 100, log=True),
            "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
            "p": trial.suggest_categorical("p", [1, 2])}


@register("knn", prep="linear", defaults={"n_neighbors": 15, "weights": "distance", "p": 2}, space=_knn_space,
          estimate=_knn_estimate, description="k-nearest neighbours (sample weights are not supported)")
def make_knn(task: Task, seed: int, n_neighbors: int = 15, weights: str = "distance", p: int = 2):
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsRegressor if task is Task.REGRESSION else KNeighborsClassifier
    return cls(n_neighbors=n_neighbors, weights=weights, p=p, n_jobs=-1)
