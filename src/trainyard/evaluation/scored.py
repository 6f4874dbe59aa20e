"""`Scored`: what a model said about labelled rows, in the form every evaluation section reads.

Classification keeps integer codes into `classes` and the probability matrix;
regression keeps floats. A naive baseline is a `Scored` too, built from what
the training data alone says (its class prior or its mean), so every section can
put the model beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from trainyard.evaluation.holdout import encode_labels
from trainyard.tasks import Task


@dataclass
class Scored:
    task: Task
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None = None
    classes: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @classmethod
    def from_model(cls, model, X: pd.DataFrame, y_raw) -> "Scored":
        """Score a TrainyardModel on rows X whose true labels (original values) are y_raw."""
        y_raw = np.asarray(y_raw)
        if model.task.is_classification:
            proba = model.predict_proba_array(X)
            return cls(model.task, encode_labels(y_raw, model.classes), proba.argmax(axis=1), proba, model.classes)
        return cls(model.task, y_raw.astype(float), np.asarray(model.predict(X), dtype=float))

    def subset(self, rows) -> "Scored":
        return replace(self, y=self.y[rows], pred=self.pred[rows], proba=None if self.proba is None else self.proba[rows])

    def with_threshold(self, threshold: float) -> "Scored":
        """Binary: predict the positive class when its probability is at least `threshold`."""
        return replace(self, pred=(self.proba[:, 1] >= threshold).astype(np.int64))

    def baseline(self, reference: dict) -> "Scored":
        """The naive model of `reference` (see `baseline_reference`) scored on these rows."""
        if reference["kind"] == "prior":
            prior = np.asarray(reference["prior"], dtype=float)
            proba = np.tile(prior, (self.n, 1))
            return replace(self, pred=np.full(self.n, int(prior.argmax())), proba=proba)
        return replace(self, pred=np.full(self.n, float(reference["mean"])))

    def labels(self, codes) -> np.ndarray:
        return self.classes[np.asarray(codes)] if self.classes is not None else np.asarray(codes)


def baseline_reference(task: Task, y_train, classes=None) -> dict:
    """What a model that ignores the features predicts: the training class prior (majority class) or mean."""
    if task.is_classification:
        codes = encode_labels(np.asarray(y_train), classes)
        prior = np.bincount(codes, minlength=len(classes)) / max(len(codes), 1)
        return {"kind": "prior", "prior": prior.tolist(), "description": f"always '{classes[prior.argmax()]}' (the training majority class), training class shares as probabilities"}
    mean = float(np.mean(np.asarray(y_train, dtype=float)))
    return {"kind": "mean", "mean": mean, "description": f"always the training mean ({mean:.4g})"}
