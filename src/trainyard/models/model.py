"""`TrainyardModel`: a fitted pipeline with what it needs to take raw rows and give labels back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema
from trainyard.tasks import Task


def as_frame(data) -> pd.DataFrame:
    """Rows as a DataFrame: a DataFrame, one dict, or a list of dicts."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame([data])
    if isinstance(data, Sequence) and not isinstance(data, str):
        return pd.DataFrame(list(data))
    raise TypeError(f"expected a DataFrame, a dict or a list of dicts, got {type(data).__name__}")


class TrainyardModel:
    """What `train` returns and `load` gives back.

    `pipeline` is a fitted scikit-learn estimator (preprocessing + model, or an
    ensemble of such) that eats raw feature columns; for classification it
    predicts integer codes into `classes`.
    """

    def __init__(self, pipeline, *, task: Task, schema: Schema, classes=None, family: str = "", metric: str = ""):
        self.pipeline = pipeline
        self.task = Task(task)
        self.schema = schema
        self.classes = None if classes is None else np.asarray(classes)
        self.family = family
        self.metric = metric

    @property
    def target(self) -> str | None:
        return self.schema.target

    @property
    def features(self) -> list[str]:
        return self.schema.features()

    def predict(self, data) -> np.ndarray:
        X = as_frame(data)
        if self.task is Task.REGRESSION:
            return np.asarray(self.pipeline.predict(X), dtype=float)
        return self.classes[self.predict_codes(X)]

    def predict_codes(self, X) -> np.ndarray:
        return np.asarray(self.predict_proba_array(X)).argmax(axis=1)

    def predict_proba_array(self, data) -> np.ndarray:
        if not self.task.is_classification:
            raise TypeError("predict_proba is for classification models")
        return np.asarray(self.pipeline.predict_proba(as_frame(data)), dtype=float)

    def predict_proba(self, data) -> pd.DataFrame:
        X = as_frame(data)
        return pd.DataFrame(self.predict_proba_array(X), columns=[str(c) for c in self.classes], index=X.index)

    def __repr__(self) -> str:
        return f"TrainyardModel(task={self.task.value}, family={self.family!r}, target={self.target!r}, features={len(self.features)})"
