"""Overfitting: train vs validation vs test scores side by side with a plain verdict; learning curves on request."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.evaluation.calibration import CalibratedPipeline
from trainyard.metrics import Metric, score_pipeline


def overfitting_verdict(metric: Metric, scores: dict[str, float | None], test_interval: tuple[float, float] | None = None,
                        baseline: float | None = None, beats_baseline: bool | None = None) -> dict:
    """Compare the scores of `metric` on the splits (keys train / validation / test) and say what it means.

    The gap is judged against how much the model gained over the naive baseline on the training rows: losing
    more than half of that advantage on the test rows is strong overfitting, more than a fifth some.
    """
    def good(v):  # higher is better, whatever the metric
        return v if metric.greater_is_better else -v

    train, test = scores.get("train"), scores.get("test")
    out = {"metric": metric.name, "scores": scores, "baseline": baseline}
    if beats_baseline is False:
        out.update(verdict="no better than baseline",
                   explanation=f"On the test rows the model's {metric.name} is not reliably better than the naive baseline: it has learned little that generalises (underfitting, or no signal in the features).")
        return out
    if train is None or test is None:
        out.update(verdict="unknown", explanation="Training or test scores are missing, so the gap cannot be judged.")
        return out
    gap = good(train) - good(test)
    out["gap"] = float(gap)
    inside = test_interval is not None and test_interval[0] <= train <= test_interval[1]
    if gap <= 0 or inside:
        out.update(verdict="no sign of overfitting",
                   explanation=f"The training {metric.name} ({train:.4g}) is within the test score's 95% interval or below it: the model does about as well on unseen rows as on the rows it learned from.")
        return out
    span = abs(good(train) - good(baseline)) if baseline is not None else abs(train)
    relative = gap / span if span > 0 else np.inf
    out["relative_gap"] = float(relative)
    if relative > 0.5:
        verdict, what = "strong overfitting", "more than half"
    elif relative > 0.2:
        verdict, what = "some overfitting", "between a fifth and a half"
    else:
        verdict, what = "small gap", "less than a fifth"
    out.update(verdict=verdict, explanation=f"Training {metric.name} {train:.4g} vs test {test:.4g}: {what} of the model's advantage over the baseline on training rows is lost on unseen rows.")
    return out


def learning_curve(model, X: pd.DataFrame, y_codes: np.ndarray, metric: Metric, sizes=(0.1, 0.25, 0.5, 0.75, 1.0),
                   folds: int = 3, seed: int = 0) -> dict:
    """Refit copies of the model's pipeline on growing shares of the rows (cross-validated) and score them.
    A calibrated model's curve is its uncalibrated pipeline's: the calibrator was fitted on validation rows that
    a refit on a share of these rows does not have."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.model_selection import learning_curve as sk_learning_curve
    classes = model.classes if model.task.is_classification else None

    def scorer(estimator, X_part, y_part):
        return score_pipeline(estimator, X_part, y_part, model.task, metric, classes)

    cv = (StratifiedKFold if model.task.is_classification else KFold)(folds, shuffle=True, random_state=seed)
    pipeline = model.pipeline.pipeline if isinstance(model.pipeline, CalibratedPipeline) else model.pipeline
    n, train_scores, val_scores = sk_learning_curve(clone(pipeline), X, y_codes, train_sizes=list(sizes), cv=cv,
                                                    scoring=scorer, shuffle=True, random_state=seed, error_score=np.nan)
    return {"metric": metric.name, "folds": folds, "train_size": n.tolist(),
            "train_mean": np.nanmean(train_scores, axis=1).tolist(), "train_std": np.nanstd(train_scores, axis=1).tolist(),
            "validation_mean": np.nanmean(val_scores, axis=1).tolist(), "validation_std": np.nanstd(val_scores, axis=1).tolist()}
