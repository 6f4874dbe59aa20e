"""`TrainyardModel`: a fitted pipeline with what it needs to take raw rows and give labels back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema
from trainyard.models.rowpath import compile_rows
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
        if self.task is Task.REGRESSION:
            fast = self._few_rows(data)
            return fast if fast is not None else np.asarray(self.pipeline.predict(as_frame(data)), dtype=float)
        return self.classes[self.predict_codes(data)]

    def predict_codes(self, X) -> np.ndarray:
        return np.asarray(self.predict_proba_array(X)).argmax(axis=1)

    def predict_proba_array(self, data) -> np.ndarray:
        if not self.task.is_classification:
            raise TypeError("predict_proba is for classification models")
        fast = self._few_rows(data)
        return fast if fast is not None else np.asarray(self.pipeline.predict_proba(as_frame(data)), dtype=float)

    # A few rows (a service's request, an interactive call) skip the pandas preprocessing where the model's parts
    # allow it (`trainyard.models.rowpath`): same numbers as the pipeline, a fraction of the time.
    FEW_ROWS = 64

    def rows_fn(self):
        """The compiled few-rows path (rows -> model output; `trainyard.models.rowpath`), built once and kept, or
        None when the model's parts have no row path. `trainyard serve` predicts small requests with it."""
        fn = self.__dict__.get("_rows_fn", False)
        if fn is False:
            try:
                fn = compile_rows(self)
            except Exception:  # an unusual model shape: the pipeline path is always right
                fn = None
            self.__dict__["_rows_fn"] = fn
        return fn

    def _few_rows(self, data) -> np.ndarray | None:
        n = len(data) if isinstance(data, (pd.DataFrame, list, tuple)) else 1 if isinstance(data, Mapping) else None
        if n is None or n == 0 or n > self.FEW_ROWS:
            return None
        fn = self.rows_fn()
        if fn is None:
            return None
        if isinstance(data, pd.DataFrame):
            rows = [{k: (None if v is pd.NA or v is pd.NaT else v) for k, v in zip(data.columns, values)}
                    for values in data.itertuples(index=False, name=None)]
        else:
            rows = [data] if isinstance(data, Mapping) else list(data)
        if not all(isinstance(r, Mapping) for r in rows):
            return None
        return np.asarray(fn(rows), dtype=float)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_rows_fn", None)  # compiled per process (holds C handles)
        return state

    def predict_proba(self, data) -> pd.DataFrame:
        X = as_frame(data)
        return pd.DataFrame(self.predict_proba_array(data), columns=[str(c) for c in self.classes], index=X.index)

    def __repr__(self) -> str:
        return f"TrainyardModel(task={self.task.value}, family={self.family!r}, target={self.target!r}, features={len(self.features)})"


def prediction_frame(model: TrainyardModel, X: pd.DataFrame) -> pd.DataFrame:
    """The predicted value (and each class's probability) for every row of X, indexed like X."""
    out = pd.DataFrame(index=X.index)
    column = f"{model.target}_predicted" if model.target else "prediction"
    if model.task.is_classification:
        proba = model.predict_proba_array(X)
        out[column] = model.classes[proba.argmax(axis=1)]
        for i, c in enumerate(model.classes):
            out[f"proba_{c}"] = proba[:, i]
    else:
        out[column] = model.predict(X)
    return out
