"""Bagging, greedy ensemble selection (Caruana et al., 2004) and the ensemble estimator.

`Bag` fits one copy of an estimator per fold and keeps the out-of-fold
predictions (`oof_`) the search scores and ensembles on. `caruana` picks, with
replacement, the members whose averaged predictions score best on validation /
out-of-fold rows. `WeightedEnsemble` is the saved model: a preprocessor per
input kind, shared by its members, and a weighted average of their outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from trainyard.models.inputs import check_weights
from trainyard.tasks import Task



def fit_estimator(estimator, X, y, sample_weight=None):
    """fit(X, y[, sample_weight]); weights are dropped for estimators that cannot take them (k-NN)."""
    if sample_weight is not None and has_fit_parameter(estimator, "sample_weight"):
        return estimator.fit(X, y, sample_weight=sample_weight)
    return estimator.fit(X, y)


def predictions(estimator, X, task: Task, n_classes: int | None) -> np.ndarray:
    """Class probabilities with one column per class code 0..n_classes-1, or regression values."""
    if task is Task.REGRESSION:
        return np.asarray(estimator.predict(X), dtype=float)
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    classes = np.asarray(getattr(estimator, "classes_", np.arange(proba.shape[1])))
    if proba.shape[1] == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, classes.astype(int)] = proba
    return full


def _take(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


class Bag(BaseEstimator):
    """k-fold bagging: one fitted copy per fold, averaged at predict time; `oof_` holds out-of-fold predictions."""

    def __init__(self, estimator=None, n_folds: int = 5, task: str = "binary", n_classes: int | None = None,
                 random_state: int = 0, time_budget_s: float | None = None):
        self.estimator = estimator
        self.n_folds = n_folds
        self.task = task
        self.n_classes = n_classes
        self.random_state = random_state
        self.time_budget_s = time_budget_s

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y)
        sample_weight = check_weights(sample_weight, y)
        started = time.monotonic()
        parts = []
        for i, (fit_idx, out_idx) in enumerate(self.folds(y)):
            budget = None
            if self.time_budget_s:
                budget = max((self.time_budget_s - (time.monotonic() - started)) / (self.n_folds - i), 0.05)
            parts.append(self.fit_fold(X, y, sample_weight, fit_idx, out_idx, budget))
        return self.assemble(len(y), parts)

    def folds(self, y) -> list[tuple[np.ndarray, np.ndarray]]:
        """(fit rows, out-of-fold rows) of each fold: a function of y and random_state alone, so a fold fitted elsewhere
        (a Ray task) is the fold fitted here."""
        from sklearn.model_selection import KFold, StratifiedKFold

        y = np.asarray(y)
        if Task(self.task).is_classification and np.bincount(y).min() >= self.n_folds:
            return list(StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state).split(np.zeros(len(y)), y))
        return list(KFold(self.n_folds, shuffle=True, random_state=self.random_state).split(np.zeros(len(y))))

    def fit_fold(self, X, y, sample_weight, fit_idx, out_idx, budget_s: float | None = None) -> tuple:
        """One fold: (its fitted copy of the estimator, its out-of-fold rows, their predictions)."""
        est = clone(self.estimator)
        if budget_s is not None and "time_budget_s" in est.get_params():
            est.set_params(time_budget_s=budget_s)
        if est.get_params().get("memory_mb"):  # a memory share (a forest's) is the whole bag's: each fold gets its part
            est.set_params(memory_mb=est.get_params()["memory_mb"] / self.n_folds)
        w = None if sample_weight is None else np.asarray(sample_weight)[fit_idx]
        fit_estimator(est, _take(X, fit_idx), np.asarray(y)[fit_idx], w)
        return est, out_idx, predictions(est, _take(X, out_idx), Task(self.task), self.n_classes)

    def assemble(self, n_rows: int, parts: list[tuple]) -> "Bag":
        """The fitted bag from its folds' (estimator, out-of-fold rows, predictions), in fold order."""
        task = Task(self.task)
        self.estimators_ = [est for est, _, _ in parts]
        self.oof_ = np.zeros(n_rows) if task is Task.REGRESSION else np.zeros((n_rows, self.n_classes))
        for _, out_idx, preds in parts:
            self.oof_[out_idx] = preds
        if task.is_classification:
            self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        return np.mean([predictions(e, X, Task(self.task), self.n_classes) for e in self.estimators_], axis=0)

    def predict(self, X):
        if Task(self.task) is Task.REGRESSION:
            check_is_fitted(self)
            return np.mean([predictions(e, X, Task.REGRESSION, None) for e in self.estimators_], axis=0)
        return self.predict_proba(X).argmax(axis=1)


def caruana(preds: list[np.ndarray], score: Callable[[np.ndarray], float], greater_is_better: bool,
            rounds: int = 25, costs: list[float] | None = None, max_cost: float | None = None,
            seconds: float | None = None) -> tuple[dict[int, int], float]:
    """Greedy forward selection with replacement: {member index: times chosen}, and the ensemble's score.

    `costs` (e.g. predict ms per row) with `max_cost` keep the ensemble's summed cost within the limit.
    Ties go to the earlier (better-ranked) member, so the result is deterministic. `seconds` stops adding
    members when the time is up (the selection so far is kept).
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    sign = 1.0 if greater_is_better else -1.0
    chosen: dict[int, int] = {}
    total = None
    best_score = -np.inf
    for _ in range(rounds):
        if deadline is not None and chosen and time.monotonic() > deadline:
            break
        round_best, round_idx = -np.inf, None
        for i, p in enumerate(preds):
            if costs is not None and max_cost is not None and i not in chosen:
                if sum(costs[j] for j in chosen) + costs[i] > max_cost:
                    continue
            candidate = p if total is None else (total * sum(chosen.values()) + p) / (sum(chosen.values()) + 1)
            s = sign * score(candidate)
            if s > round_best + 1e-12:
                round_best, round_idx = s, i
        if round_idx is None or (chosen and round_best <= best_score + 1e-12):
            break
        n = sum(chosen.values())
        total = preds[round_idx] if total is None else (total * n + preds[round_idx]) / (n + 1)
        chosen[round_idx] = chosen.get(round_idx, 0) + 1
        best_score = round_best
    return chosen, sign * best_score


class WeightedEnsemble(BaseEstimator):
    """Weighted average of member estimators, each behind a preprocessor shared by members of the same kind.

    `preps` maps a preprocessing kind ("linear", "tree") to an unfitted preprocessor; `members` is a list of
    (kind, unfitted estimator); `weights` sum to one. Classification members predict codes 0..n_classes-1.
    """

    def __init__(self, preps: dict | None = None, members: list | None = None, weights: list | None = None,
                 task: str = "binary", n_classes: int | None = None):
        self.preps = preps
        self.members = members
        self.weights = weights
        self.task = task
        self.n_classes = n_classes

    def fit(self, X, y, sample_weight=None):
        kinds = sorted({kind for kind, _ in self.members})
        self.preps_ = {kind: clone(self.preps[kind]) for kind in kinds}
        # fit_transform with the target: a target encoder cross-fits the training rows instead of leaking their labels
        inputs = {kind: prep.fit_transform(X, y) for kind, prep in self.preps_.items()}
        self.members_ = [fit_estimator(clone(est), inputs[kind], y, sample_weight) for kind, est in self.members]
        self._finish()
        return self

    @classmethod
    def from_fitted(cls, preps_: dict, members_: list, kinds: list[str], weights: list[float], task: str, n_classes: int | None):
        """An ensemble from already fitted parts (what the search fitted), refittable later with `fit`."""
        self = cls(preps={k: clone(p) for k, p in preps_.items()}, members=[(k, clone(m)) for k, m in zip(kinds, members_)],
                   weights=list(weights), task=task, n_classes=n_classes)
        self.preps_ = {k: preps_[k] for k in sorted(set(kinds))}
        self.members_ = list(members_)
        self._finish()
        return self

    def _finish(self):
        self.kinds_ = [kind for kind, _ in self.members]
        if Task(self.task).is_classification:
            self.classes_ = np.arange(self.n_classes)

    def _combined(self, X) -> np.ndarray:
        check_is_fitted(self)
        inputs = {kind: prep.transform(X) for kind, prep in self.preps_.items()}
        task = Task(self.task)
        total = None
        for kind, est, w in zip(self.kinds_, self.members_, self.weights):
            p = w * predictions(est, inputs[kind], task, self.n_classes)
            total = p if total is None else total + p
        return total

    def predict_proba(self, X):
        if not Task(self.task).is_classification:
            raise AttributeError("predict_proba is for classification ensembles")
        return self._combined(X)

    def predict(self, X):
        out = self._combined(X)
        return out if Task(self.task) is Task.REGRESSION else out.argmax(axis=1)
