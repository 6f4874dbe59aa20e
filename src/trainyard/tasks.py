"""Tasks and their default metrics; `infer_task` picks one from the target column."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from trainyard.errors import ConfigError, DataError, suggest


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    IMAGE_CLASSIFICATION = "image-classification"  # neural tasks: trainyard.runs.neural
    TEXT_CLASSIFICATION = "text-classification"
    TEXT_REGRESSION = "text-regression"

    @property
    def is_classification(self) -> bool:
        return self in (Task.BINARY, Task.MULTICLASS)


TABULAR_TASKS = frozenset({Task.BINARY, Task.MULTICLASS, Task.REGRESSION})
DEFAULT_METRIC = {Task.BINARY: "roc_auc", Task.MULTICLASS: "accuracy", Task.REGRESSION: "rmse"}


def parse_task(name: str | None) -> Task | None:
    if name is None:
        return None
    try:
        return Task(name)
    except ValueError:
        raise ConfigError(f"'{name}' is not a task.", suggest(name, [t.value for t in Task])) from None


def infer_task(y: pd.Series) -> Task:
    """binary for two classes, multiclass for a few labels, regression for many numbers."""
    values = y.dropna()
    n_unique = values.nunique()
    if n_unique == 2:
        return Task.BINARY
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        as_num = pd.to_numeric(values, errors="coerce")
        if as_num.notna().mean() < 0.99:
            if n_unique > max(50, 0.2 * len(values)):
                raise DataError(
                    f"Target '{y.name}' is text with {n_unique} distinct values: too many classes to learn from {len(values)} rows.",
                    "pick the right target column, or group rare labels before training.",
                )
            return Task.MULTICLASS
        values = as_num.dropna()
    is_integer = np.allclose(values, np.round(values))
    if is_integer and n_unique <= 20 and n_unique <= max(3, 0.05 * len(values)):
        return Task.MULTICLASS
    return Task.REGRESSION


def check_task_fits_target(task: Task, y: pd.Series) -> None:
    values = y.dropna()
    if task is Task.BINARY and values.nunique() != 2:
        raise DataError(
            f"--task binary needs exactly 2 classes, but '{y.name}' has {values.nunique()}.",
            "use --task multiclass, or leave --task out to infer it.",
        )
    if task is Task.REGRESSION and pd.to_numeric(values, errors="coerce").isna().any():
        raise DataError(
            f"--task regression needs a numeric target, but '{y.name}' holds text such as {values.iloc[0]!r}.",
            "use --task binary or multiclass, or leave --task out.",
        )
