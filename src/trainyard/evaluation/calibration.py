"""Calibration: reliability diagram, expected calibration error, a calibrator chosen on validation data,
and the decision threshold of a binary model tuned for a metric or a cost.

Binary models are judged on the positive class's probability; multiclass models
on their top-label confidence (the probability of the predicted class).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from trainyard.errors import ConfigError
from trainyard.evaluation.scored import Scored

CALIBRATORS = ("sigmoid", "isotonic", "temperature")


def confidence_and_hit(scored: Scored) -> tuple[np.ndarray, np.ndarray]:
    """(probability the model gave, whether the event happened) for each row."""
    if scored.proba.shape[1] == 2:
        return scored.proba[:, 1], (scored.y == 1).astype(float)
    return scored.proba.max(axis=1), (scored.pred == scored.y).astype(float)


def reliability(scored: Scored, n_bins: int = 10) -> dict:
    """Equal-width bins of predicted probability: mean prediction, observed frequency and count per bin, and ECE.

    ECE = sum over bins of (rows in bin / rows) x |observed frequency - mean predicted probability|.
    """
    conf, hit = confidence_and_hit(scored)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(idx, conf, n_bins) / count
        observed = np.bincount(idx, hit, n_bins) / count
    gaps = np.where(count > 0, np.abs(observed - mean_pred), 0.0)
    ece = float((count * gaps).sum() / max(len(conf), 1))
    mce = float(gaps.max()) if len(conf) else float("nan")
    kind = "positive class probability" if scored.proba.shape[1] == 2 else "top-label confidence"
    return {"kind": kind, "n_bins": n_bins, "edges": edges.tolist(), "count": count.tolist(),
            "mean_predicted": [None if c == 0 else float(v) for c, v in zip(count, mean_pred)],
            "observed": [None if c == 0 else float(v) for c, v in zip(count, observed)],
            "ece": ece, "max_calibration_error": mce}


class _Probabilities(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose input is already its probability matrix: lets scikit-learn calibrators fit on scores."""

    def __init__(self, n_classes: int = 2):
        self.n_classes = n_classes

    def fit(self, X, y=None):
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X):
        return np.asarray(X, dtype=float)

    def predict(self, X):
        return np.asarray(X).argmax(axis=1)


class CalibratedPipeline(ClassifierMixin, BaseEstimator):
    """A fitted pipeline followed by a calibrator of its probabilities (fitted separately, on validation rows)."""

    def __init__(self, pipeline=None, calibrator=None):
        self.pipeline = pipeline
        self.calibrator = calibrator

    def fit(self, X, y):  # both parts arrive fitted; refitting would need new validation rows
        raise TypeError("CalibratedPipeline is built from fitted parts by trainyard.evaluation.calibration.calibrate")

    @property
    def classes_(self):
        return self.calibrator.classes_

    def predict_proba(self, X):
        return self.calibrator.predict_proba(self.pipeline.predict_proba(X))

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def _fit_calibrator(proba: np.ndarray, y: np.ndarray, method: str):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    base = FrozenEstimator(_Probabilities(proba.shape[1]).fit(proba))
    return CalibratedClassifierCV(base, method=method).fit(proba, y)


def calibrate(model, X_val, y_val_codes, method: str) -> CalibratedPipeline:
    """The model's pipeline followed by a `method` calibrator fitted on its validation-row probabilities."""
    if method not in CALIBRATORS:
        raise ConfigError(f"'{method}' is not a calibration method.", "use one of " + ", ".join(CALIBRATORS) + ", or auto.")
    proba = model.predict_proba_array(X_val)
    return CalibratedPipeline(model.pipeline, _fit_calibrator(proba, np.asarray(y_val_codes), method))


def choose_calibration(model, X_val, y_val_codes, folds: int = 5, seed: int = 0) -> dict:
    """Pick none / sigmoid / isotonic / temperature by cross-validated log loss on the validation rows.

    Each calibrator is fitted on k-1 folds of the validation predictions and scored on the held-out fold, so the
    choice is not judged on the rows it was fitted on. The test set is not used.
    """
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y_val_codes)
    labels = np.arange(len(model.classes))
    min_class = np.bincount(y, minlength=len(labels)).min()
    k = int(min(folds, min_class))
    if k < 2:
        return {"method": "none", "reason": "too few validation rows per class to compare calibrators", "val_log_loss": {}}
    proba = model.predict_proba_array(X_val)
    losses = {"none": [], **{m: [] for m in CALIBRATORS}}
    for fit_idx, held_idx in StratifiedKFold(k, shuffle=True, random_state=seed).split(proba, y):
        losses["none"].append(log_loss(y[held_idx], proba[held_idx], labels=labels))
        for method in CALIBRATORS:
            try:
                cal = _fit_calibrator(proba[fit_idx], y[fit_idx], method)
                losses[method].append(log_loss(y[held_idx], cal.predict_proba(proba[held_idx]), labels=labels))
            except (ValueError, FloatingPointError):
                losses[method].append(np.inf)
    mean = {m: float(np.mean(v)) for m, v in losses.items()}
    best = min(mean, key=mean.get)
    # Keep the model as it is unless a calibrator is clearly better (1% lower log loss).
    if best != "none" and mean[best] > 0.99 * mean["none"]:
        best = "none"
    return {"method": best, "val_log_loss": mean, "folds": k,
            "reason": "lowest cross-validated log loss on the validation rows" if best != "none" else "no calibrator lowers validation log loss by 1% or more"}


def tune_threshold(scored: Scored, metric: str = "f1", cost_fp: float | None = None, cost_fn: float | None = None) -> dict:
    """Best probability threshold for the positive class on these (validation) rows.

    With costs, minimises cost_fp x false positives + cost_fn x false negatives; otherwise maximises
    `metric` (f1, accuracy, balanced_accuracy, precision, recall). Every distinct score is a candidate.
    """
    p, y = scored.proba[:, 1], scored.y == 1
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # threshold at each distinct score: predict positive for p >= it
    tp = np.cumsum(ys)[last].astype(float)
    fp = np.cumsum(~ys)[last].astype(float)
    thresholds = ps[last]
    P, N = y.sum(), (~y).sum()
    # Also the "never positive" threshold (above every score).
    tp, fp, thresholds = np.r_[0.0, tp], np.r_[0.0, fp], np.r_[np.nextafter(1.0, 2.0), thresholds]
    fn, tn = P - tp, N - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = {
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            "accuracy": (tp + tn) / len(y),
            "balanced_accuracy": 0.5 * (np.where(P > 0, tp / max(P, 1), 0) + np.where(N > 0, tn / max(N, 1), 0)),
            "precision": np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0),
            "recall": tp / max(P, 1),
        }
    if cost_fp is not None or cost_fn is not None:
        cost = (cost_fp or 0.0) * fp + (cost_fn or 0.0) * fn
        i = int(np.argmin(cost))
        objective = {"objective": "cost", "cost_fp": cost_fp or 0.0, "cost_fn": cost_fn or 0.0, "cost": float(cost[i]),
                     "cost_at_0.5": float(_cost_at(p, y, 0.5, cost_fp or 0.0, cost_fn or 0.0))}
    else:
        if metric not in scores:
            raise ConfigError(f"Cannot tune the threshold for '{metric}'.", "use one of " + ", ".join(scores) + ", or give costs.")
        i = int(np.argmax(scores[metric]))
        objective = {"objective": metric, "value": float(scores[metric][i]),
                     "value_at_0.5": float(scores[metric][np.searchsorted(-thresholds, -0.5, side="right") - 1])}
    return {"threshold": float(min(thresholds[i], 1.0)), **objective, "rows": int(len(y))}


def _cost_at(p, y, threshold, cost_fp, cost_fn) -> float:
    pred = p >= threshold
    return cost_fp * float((pred & ~y).sum()) + cost_fn * float((~pred & y).sum())
