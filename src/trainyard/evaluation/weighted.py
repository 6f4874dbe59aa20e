"""Metrics under row weights, vectorised over many weightings at once.

A bootstrap resample is a vector of counts (how often each row was drawn), so a
metric on B resamples is the metric under B weight vectors: `W` has shape
(B, n). With `W = ones((1, n))` each function equals the scikit-learn metric of
the same name in `metrics.py` (the tests check this against scikit-learn and
against a plain loop over resampled rows). Classification takes integer codes
`y`, `pred` in 0..k-1 and a probability matrix; the positive class of binary
metrics is code 1. Every function returns an array of shape (B,), NaN where the
metric is undefined for that weighting.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = np.nan) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _counts(W, y, pred, c):
    """Weighted true positives, false positives and false negatives of class c (one-vs-rest)."""
    yc, pc = y == c, pred == c
    return W @ (yc & pc), W @ (~yc & pc), W @ (yc & ~pc)


def accuracy(W, y, pred, proba=None):
    return _ratio(W @ (y == pred), W.sum(axis=1))


def balanced_accuracy(W, y, pred, proba=None):
    k = _n_classes(y, pred, proba)
    recalls = np.stack([_ratio(W @ ((y == c) & (pred == c)), W @ (y == c)) for c in range(k)])
    with warnings.catch_warnings():  # a weighting with no rows of any class is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(recalls, axis=0)


def precision(W, y, pred, proba=None, c=1):
    tp, fp, _ = _counts(W, y, pred, c)
    return _ratio(tp, tp + fp, empty=0.0)


def recall(W, y, pred, proba=None, c=1):
    tp, _, fn = _counts(W, y, pred, c)
    return _ratio(tp, tp + fn, empty=0.0)


def f1(W, y, pred, proba=None, c=1):
    tp, fp, fn = _counts(W, y, pred, c)
    return _ratio(2 * tp, 2 * tp + fp + fn, empty=0.0)


def f1_macro(W, y, pred, proba=None):
    """Macro F1 over the labels present (weight > 0) in y or pred, as scikit-learn does on resampled rows."""
    k = _n_classes(y, pred, proba)
    scores, present = [], []
    for c in range(k):
        scores.append(f1(W, y, pred, c=c))
        present.append(W @ ((y == c) | (pred == c)) > 0)
    scores, present = np.stack(scores), np.stack(present)
    return _ratio((scores * present).sum(axis=0), present.sum(axis=0).astype(float))


def _auc(W, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC (ties count one half), from cumulative sums over distinct scores."""
    order = np.argsort(score, kind="mergesort")
    s, pos = score[order], positive[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    Wo = W[:, order]
    pos_w = np.add.reduceat(Wo * pos, starts, axis=1)
    neg_w = np.add.reduceat(Wo * ~pos, starts, axis=1)
    neg_below = np.cumsum(neg_w, axis=1) - neg_w
    num = (pos_w * (neg_below + 0.5 * neg_w)).sum(axis=1)
    return _ratio(num, pos_w.sum(axis=1) * neg_w.sum(axis=1))


def roc_auc(W, y, pred, proba):
    if proba.shape[1] == 2:
        return _auc(W, y == 1, proba[:, 1])
    # One-vs-rest, macro-averaged; undefined when a class is absent (as in scikit-learn).
    return np.mean([_auc(W, y == c, proba[:, c]) for c in range(proba.shape[1])], axis=0)


def pr_auc(W, y, pred, proba):
    """Average precision: sum over distinct thresholds (descending) of recall gained x precision there."""
    score, positive = proba[:, 1], y == 1
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], positive[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    Wo = W[:, order]
    tp = np.cumsum(np.add.reduceat(Wo * pos, starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(Wo * ~pos, starts, axis=1), axis=1)
    gained = np.diff(tp, axis=1, prepend=0.0)
    prec = _ratio(tp, tp + fp, empty=0.0)
    return _ratio((gained * prec).sum(axis=1), tp[:, -1])


def log_loss(W, y, pred, proba):
    eps = np.finfo(float).eps  # scikit-learn clips to [eps, 1 - eps]
    p = np.clip(proba[np.arange(len(y)), y], eps, 1 - eps)
    return _ratio(W @ -np.log(p), W.sum(axis=1))


def brier(W, y, pred, proba):
    return _ratio(W @ (proba[:, 1] - (y == 1)) ** 2, W.sum(axis=1))


def rmse(W, y, pred, proba=None):
    return np.sqrt(_ratio(W @ (y - pred) ** 2, W.sum(axis=1)))


def mae(W, y, pred, proba=None):
    return _ratio(W @ np.abs(y - pred), W.sum(axis=1))


def mape(W, y, pred, proba=None):
    return _ratio(W @ (np.abs(y - pred) / np.maximum(np.abs(y), np.finfo(float).eps)), W.sum(axis=1))


def r2(W, y, pred, proba=None):
    total = W.sum(axis=1)
    mean = _ratio(W @ y, total)
    ss_tot = W @ y**2 - total * mean**2
    ss_res = W @ (y - pred) ** 2
    ss_tot = np.where(np.abs(ss_tot) <= 1e-12 * np.maximum(W @ y**2, 1e-300), 0.0, ss_tot)
    out = 1 - _ratio(ss_res, ss_tot)
    # scikit-learn's convention for a constant target: 1 for a perfect fit, else 0.
    return np.where(ss_tot > 0, out, np.where(ss_res == 0, 1.0, 0.0))


def _n_classes(y, pred, proba) -> int:
    if proba is not None:
        return proba.shape[1]
    return int(max(y.max(initial=0), pred.max(initial=0))) + 1


WEIGHTED: dict[str, Callable] = {
    "accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "precision": precision, "recall": recall, "f1": f1,
    "f1_macro": f1_macro, "roc_auc": roc_auc, "pr_auc": pr_auc, "log_loss": log_loss, "brier": brier,
    "rmse": rmse, "mae": mae, "mape": mape, "r2": r2,
}
PER_CLASS: dict[str, Callable] = {"precision": precision, "recall": recall, "f1": f1}
