"""Score a fitted model once on held-out rows, beside a naive baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.errors import DataError
from trainyard.metrics import score_all
from trainyard.tasks import Task


def holdout_metrics(model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Every reported metric of `model` (a TrainyardModel) on (X, y) with y in original labels."""
    y = np.asarray(y)
    if model.task.is_classification:
        codes = encode_labels(y, model.classes)
        proba = model.predict_proba_array(X)
        return score_all(model.task, codes, proba.argmax(axis=1), proba, np.arange(len(model.classes)))
    return score_all(model.task, y.astype(float), model.predict(X))


def baseline_metrics(task: Task, y_train, y_test, classes=None) -> dict[str, float]:
    """What a model that ignores the features scores: the training majority class / prior, or the training mean."""
    y_test = np.asarray(y_test)
    if task.is_classification:
        train_codes = encode_labels(np.asarray(y_train), classes)
        test_codes = encode_labels(y_test, classes)
        prior = np.bincount(train_codes, minlength=len(classes)) / len(train_codes)
        proba = np.tile(prior, (len(test_codes), 1))
        pred = np.full(len(test_codes), prior.argmax())
        return score_all(task, test_codes, pred, proba, np.arange(len(classes)))
    mean = float(np.mean(np.asarray(y_train, dtype=float)))
    return score_all(task, y_test.astype(float), np.full(len(y_test), mean))


def encode_labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Integer codes of labels in `classes`; unseen labels raise."""
    lookup = {str(c): i for i, c in enumerate(classes)}
    try:
        return np.fromiter((lookup[str(v)] for v in y), dtype=np.int64, count=len(y))
    except KeyError as exc:
        raise DataError(f"Label {exc.args[0]!r} was never seen in training.", f"the model knows {', '.join(map(str, classes))}.") from None


def class_labels(y: pd.Series) -> np.ndarray:
    """Sorted distinct labels, as the original values when they sort, else as strings."""
    values = y.dropna().unique()
    try:
        return np.sort(values)
    except TypeError:
        return np.sort(values.astype(str))
